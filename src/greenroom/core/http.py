"""HTTP kernel shared by every context's routes: the Backstage error body and request ids."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from greenroom.core.errors import GreenroomError

_NAMES = {400: "InputError", 401: "AuthenticationError", 403: "NotAllowedError",
          404: "NotFoundError", 405: "MethodNotAllowedError", 409: "ConflictError",
          413: "PayloadTooLargeError", 422: "InputError", 500: "Error"}


def error_body(request: Request, status: int, name: str, message: str) -> dict[str, Any]:
    """Backstage's error shape: ``{error: {name, message}, request: {method, url}, response}``."""
    url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return {
        "error": {"name": name, "message": message},
        "request": {"method": request.method, "url": url},
        "response": {"statusCode": status},
    }


def error_response(request: Request, status: int, name: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(request, status, name, message), status_code=status)


def describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


__all__ = ["GreenroomError", "RequestValidationError", "StarletteHTTPException", "error_body",
           "error_response", "describe_validation", "new_request_id", "_NAMES"]

"""``/api/scaffolder``: Backstage's scaffolder-backend v2 routes (see the corpus OpenAPI document).

Parameter validation failures answer 400 with Backstage's ``{errors: [ValidationError]}`` plus our
usual error envelope, so both Backstage's frontend and generic clients understand them.
``/v2/tasks/{id}/eventstream`` sends ``event: <type>`` / ``id: <event id>`` / ``data: <event
JSON>`` frames and ends after the completion event; ``Last-Event-ID`` resumes like ``after``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from greenroom.auth.model import Principal
from greenroom.core.errors import InputError
from greenroom.core.http import error_body
from greenroom.scaffolder.model import ParameterValidationError
from greenroom.scaffolder.service import ScaffolderService

router = APIRouter()

LONG_POLL_SECONDS = 30.0  # RFC 6202's recommendation, as Backstage
MAX_OFFSET = 2**31 - 1  # databases take 64-bit offsets; no task list is longer than this
MAX_EVENT_ID = 2**63 - 1  # event ids are 64-bit database integers
MAX_DRY_RUN_FILES = 5000


class ScaffoldRequest(BaseModel):
    templateRef: str = Field(min_length=1)
    values: dict[str, Any]
    secrets: dict[str, str] | None = None


class RetryRequest(BaseModel):
    secrets: dict[str, str] | None = None


class DryRunRequest(BaseModel):
    template: Any
    values: dict[str, Any]
    secrets: dict[str, str] | None = None
    # Every file is written and rendered: bound the work one request can ask for.
    directoryContents: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_DRY_RUN_FILES)


def _service(request: Request) -> ScaffolderService:
    service: ScaffolderService = request.app.state.portal.services["scaffolder"]
    return service


def _principal(request: Request) -> Principal | None:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


def _validation_response(request: Request, exc: ParameterValidationError) -> JSONResponse:
    body = {"errors": [e.as_json() for e in exc.errors], **error_body(request, 400, "InputError", exc.message)}
    return JSONResponse(body, status_code=400)


@router.get("/v2/actions", summary="List installed actions")
async def list_actions(request: Request) -> list[dict[str, Any]]:
    return _service(request).list_actions()


@router.post("/v2/tasks", status_code=201, summary="Run a template", response_model=None)
async def create_task(request: Request, body: ScaffoldRequest) -> Any:
    try:
        task_id = await _service(request).create_task(body.templateRef, body.values, body.secrets,
                                                      _principal(request))
    except ParameterValidationError as exc:
        return _validation_response(request, exc)
    return {"id": task_id}


@router.get("/v2/tasks", summary="List tasks")
async def list_tasks(
    request: Request,
    createdBy: list[str] | None = Query(None),  # noqa: B008 - FastAPI's way to declare list params
    status: list[str] | None = Query(None),  # noqa: B008
    limit: int | None = Query(None, ge=0, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    order: list[str] | None = Query(None),  # noqa: B008
) -> dict[str, Any]:
    return await _service(request).list_tasks(created_by=createdBy, status=status, limit=limit, offset=offset,
                                              order=order)


@router.get("/v2/tasks/{taskId}", summary="Get a task")
async def get_task(request: Request, taskId: str) -> dict[str, Any]:
    return await _service(request).get_task(taskId)


@router.get("/v2/tasks/{taskId}/events", summary="Events after an id (long poll)")
async def task_events(request: Request, taskId: str,
                      after: int | None = Query(None, ge=-MAX_EVENT_ID, le=MAX_EVENT_ID)) -> list[dict[str, Any]]:
    return await _service(request).events(taskId, after, wait_seconds=LONG_POLL_SECONDS)


@router.get("/v2/tasks/{taskId}/eventstream", summary="Events as server-sent events", response_model=None)
async def task_eventstream(request: Request, taskId: str,
                           after: int | None = Query(None, ge=-MAX_EVENT_ID, le=MAX_EVENT_ID)) -> StreamingResponse:
    service = _service(request)
    last_id = request.headers.get("last-event-id")
    if after is None and last_id:
        # Event ids are database integers: 18 digits fit every one and keep int() cheap.
        if not (last_id.isascii() and last_id.isdigit()) or len(last_id) > 18:
            raise InputError("Last-Event-ID: must be an event id (an integer)")
        after = int(last_id)
    await service.get_task(taskId)  # 404 before the stream starts

    async def frames() -> AsyncIterator[bytes]:
        async for item in service.stream_events(taskId, after):
            data = json.dumps(item, separators=(",", ":"))
            yield f"event: {item['type']}\nid: {item['id']}\ndata: {data}\n\n".encode()

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "Connection": "keep-alive",
                                      "X-Accel-Buffering": "no"})


@router.post("/v2/tasks/{taskId}/cancel", summary="Cancel a task")
async def cancel_task(request: Request, taskId: str) -> dict[str, Any]:
    return await _service(request).cancel(taskId, _principal(request))


@router.post("/v2/tasks/{taskId}/retry", status_code=201, summary="Run a finished task again")
async def retry_task(request: Request, taskId: str, body: RetryRequest | None = None) -> dict[str, Any]:
    secrets = body.secrets if body else None
    return {"id": await _service(request).retry(taskId, secrets, _principal(request))}


@router.post("/v2/dry-run", summary="Dry-run a template", response_model=None)
async def dry_run(request: Request, body: DryRunRequest) -> Any:
    try:
        return await _service(request).dry_run(body.template, body.values, body.directoryContents,
                                                body.secrets, _principal(request))
    except ParameterValidationError as exc:
        return _validation_response(request, exc)


@router.get("/v2/templates/{namespace}/{kind}/{name}/parameter-schema", summary="A template's parameter forms")
async def parameter_schema(request: Request, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return await _service(request).get_parameter_schema(namespace, kind, name)


@router.post("/v2/autocomplete/{provider}/{resource}", summary="Autocomplete (no providers installed)")
async def autocomplete(provider: str, resource: str) -> dict[str, Any]:
    raise InputError(f"Unsupported provider: {provider}; Greenroom has no autocomplete providers installed")


@router.get("/v2/templating-extensions", summary="Filters and globals templates may use")
async def templating_extensions(request: Request) -> dict[str, Any]:
    return _service(request).templating_extensions()

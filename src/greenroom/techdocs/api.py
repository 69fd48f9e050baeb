"""TechDocs HTTP API, mounted at ``/api/techdocs``: Backstage's routes plus build control.

``/static/docs/...`` serves the stored site files as built. HTML and SVG from docs are untrusted,
so every file is sent with ``Content-Security-Policy: sandbox`` (opened directly, a page runs no
script and gets an opaque origin, so it can't act with the portal's cookies) and ``nosniff``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from greenroom.core.errors import InputError, NotFoundError
from greenroom.techdocs.model import EntityTriple
from greenroom.techdocs.service import TechDocsService

router = APIRouter()

_STATIC_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; font-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _service(request: Request) -> TechDocsService:
    return request.app.state.portal.services["techdocs"]  # type: ignore[no-any-return]


def _triple(namespace: str, kind: str, name: str) -> EntityTriple:
    try:
        return EntityTriple(namespace, kind, name)
    except ValueError as e:
        raise InputError(str(e)) from None


@router.get("/static/docs/{namespace}/{kind}/{name}/{path:path}", summary="A file of a built docs site")
def static_docs(request: Request, namespace: str, kind: str, name: str, path: str) -> Response:
    body, ctype = _service(request).static_file(_triple(namespace, kind, name), path)
    return Response(body, media_type=ctype, headers=_STATIC_HEADERS)


@router.get("/metadata/techdocs/{namespace}/{kind}/{name}", summary="techdocs_metadata.json of a site")
def techdocs_metadata(request: Request, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return _service(request).techdocs_metadata(_triple(namespace, kind, name))


@router.get("/metadata/entity/{namespace}/{kind}/{name}", summary="The entity with its docs location")
def entity_metadata(request: Request, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return _service(request).entity_metadata(_triple(namespace, kind, name))


def _sse(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


async def _follow(service: TechDocsService, triple: EntityTriple, queued: bool) -> AsyncIterator[str]:
    """Backstage's sync stream: ``log`` events, then one ``finish`` ({updated}) or ``error``."""
    if not queued:
        yield _sse("finish", {"updated": False})
        return
    deadline = time.monotonic() + service.options.build_timeout_s * 2 + 180
    last_status = None
    while time.monotonic() < deadline:
        status = await asyncio.to_thread(service.build_status, triple)
        if status is None:
            break
        if status["status"] != last_status:
            last_status = status["status"]
            yield _sse("log", f"Build {last_status}")
        if status["status"] == "succeeded":
            for line in (status.get("log") or "").splitlines():
                yield _sse("log", line)
            yield _sse("finish", {"updated": True})
            return
        if status["status"] == "failed":
            for line in (status.get("log") or "").splitlines():
                yield _sse("log", line)
            yield _sse("error", f"Failed to build the docs page: {status.get('error')}")
            return
        await asyncio.sleep(0.25)
    yield _sse("error", "Timed out waiting for the docs build; check back later")


@router.get("/sync/{namespace}/{kind}/{name}", summary="Rebuild the docs if they are stale")
async def sync(request: Request, namespace: str, kind: str, name: str) -> Response:
    service = _service(request)
    triple = _triple(namespace, kind, name)
    decision = await asyncio.to_thread(service.sync, triple)
    if "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(_follow(service, triple, decision["queued"]),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "Connection": "keep-alive"})
    return JSONResponse({"updated": False, "queued": decision["queued"], "build": decision["build"]})


@router.post("/builds/{namespace}/{kind}/{name}", status_code=202, summary="Queue a docs rebuild")
def rebuild(request: Request, namespace: str, kind: str, name: str) -> dict[str, Any]:
    principal = getattr(request.state, "principal", None)
    who = principal.subject if principal is not None else "anonymous"
    return _service(request).request_build(_triple(namespace, kind, name), f"rebuild by {who}")


@router.get("/builds/{namespace}/{kind}/{name}", summary="Last build: status, log, broken links")
def build_status(request: Request, namespace: str, kind: str, name: str) -> dict[str, Any]:
    triple = _triple(namespace, kind, name)
    status = _service(request).build_status(triple)
    if status is None:
        raise NotFoundError(f"No docs build recorded for {triple.ref}")
    return status


@router.get("/builds", summary="Documented entities with their last build and freshness")
def list_builds(request: Request) -> list[dict[str, Any]]:
    return _service(request).list_documented()

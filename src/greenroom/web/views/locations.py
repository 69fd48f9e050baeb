"""Register an existing component (analyse, confirm, land on it) and the locations admin page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from greenroom.core.errors import ConflictError, InputError, NotFoundError
from greenroom.web.model import entity_ref
from greenroom.web.views.common import PageRoute, catalog, web

router = APIRouter(route_class=PageRoute)


def _type_of(target: str) -> str:
    return "url" if target.strip().lower().startswith(("http://", "https://")) else "file"


@router.get("/catalog-import")
def import_page(request: Request, target: str = "") -> Response:
    return web(request).render(request, "register.html", active="register", target=target,
                               preview=None, error=None)


@router.post("/catalog-import/analyze")
def import_analyze(request: Request, target: str = Form("")) -> Response:
    """Dry run: what would be imported, with any errors; nothing is stored."""
    target = target.strip()
    w = web(request)
    if not target:
        return w.render(request, "register.html", status=400, active="register", target=target,
                        preview=None, error="Paste the URL or path of a catalog-info.yaml file.")
    try:
        preview = catalog(request).register_location(_type_of(target), target, dry_run=True)
    except (InputError, ConflictError, NotFoundError) as e:
        return w.render(request, "register.html", status=400, active="register", target=target,
                        preview=None, error=e.message)
    return w.render(request, "register.html", active="register", target=target, preview=preview,
                    refs=[entity_ref(e) for e in preview.get("entities", [])], error=None)


@router.post("/catalog-import")
def import_confirm(request: Request, target: str = Form("")) -> Response:
    target = target.strip()
    w = web(request)
    try:
        result = catalog(request).register_location(_type_of(target), target)
    except (InputError, ConflictError, NotFoundError) as e:
        return w.render(request, "register.html", status=400, active="register", target=target,
                        preview=None, error=e.message)
    entities = [e for e in result.get("entities", []) if str(e.get("kind", "")).lower() != "location"]
    landing = entities[0] if entities else (result.get("entities") or [None])[0]
    if landing is None:
        return RedirectResponse("/locations", status_code=303)
    note = urlencode({"registered": str(len(result.get("entities", [])))})
    return RedirectResponse(f"{entity_ref(landing).path}?{note}", status_code=303)


@router.get("/locations")
def locations_page(request: Request) -> Response:
    every = catalog(request).list_locations(roots_only=False)
    rows = [r for r in every if not r.get("parent_id")]
    by_root: dict[str, list[dict[str, Any]]] = {}
    for r in every:  # a root shows the problems of every file below it, naming the file
        by_root.setdefault(r.get("root_id") or r["id"], []).extend(
            {"target": r["target"], "message": _message(p)} for p in _problems(r))
        if r.get("parent_id"):
            by_root.setdefault(f"n:{r.get('root_id')}", []).append(r)
    for row in rows:
        row["problems"] = by_root.get(row["id"], [])
        row["children"] = len(by_root.get(f"n:{row['id']}", []))
    return web(request).render(request, "locations.html", active="locations", rows=rows)


def _problems(row: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        items = orjson.loads(row.get("errors") or "[]")
    except orjson.JSONDecodeError:
        return []
    return items if isinstance(items, list) else []


def _message(item: Any) -> str:
    if isinstance(item, dict):
        err = item.get("error") or {}
        return str(err.get("message") or item.get("message") or item)
    return str(item)


@router.post("/locations/{location_id}/refresh")
def location_refresh(request: Request, location_id: str) -> Response:
    svc = catalog(request)
    svc.get_location(location_id)  # 404 page when it is gone
    svc.process_tree(location_id)
    return RedirectResponse(f"/locations?{urlencode({'refreshed': location_id})}", status_code=303)


@router.get("/locations/{location_id}/unregister")
def location_unregister_page(request: Request, location_id: str) -> Response:
    svc = catalog(request)
    row = svc.get_location(location_id)
    refs = svc.entities_of_location(location_id)
    return web(request).render(request, "unregister.html", active="locations", row=row, refs=refs)


@router.post("/locations/{location_id}/unregister")
def location_unregister(request: Request, location_id: str, mode: str = Form("delete")) -> Response:
    refs = catalog(request).delete_location(location_id, delete_entities=mode != "orphan")
    return RedirectResponse(f"/locations?{urlencode({'unregistered': len(refs)})}", status_code=303)

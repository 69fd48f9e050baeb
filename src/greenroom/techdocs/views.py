"""Docs pages inside the portal shell: the docs home (/docs) and each built page
(/docs/{namespace}/{kind}/{name}/{path}) with the site's navigation, the page's table of
contents, build status, freshness, broken links and a Rebuild button.

Pages render through the web shell (``portal.services["web"]``), found at request time: the web
context sits above this one, so nothing of it is imported. Page bodies come sanitized from
``TechDocsService.page``; everything else is escaped by the templates.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from greenroom.core.errors import InputError, NotFoundError
from greenroom.techdocs.engine.storage import safe_relpath
from greenroom.techdocs.model import TECHDOCS_REF, EntityTriple
from greenroom.techdocs.service import TechDocsService
from greenroom.techdocs.service.portal import documented_entities
from greenroom.web.service import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _techdocs(request: Request) -> TechDocsService:
    return request.app.state.portal.services["techdocs"]  # type: ignore[no-any-return]


def _render(request: Request, template: str, status: int = 200, **ctx: Any) -> Response:
    web = request.app.state.portal.services["web"]
    return web.render(request, template, status=status, active="docs", **ctx)  # type: ignore[no-any-return]


def _triple(namespace: str, kind: str, name: str) -> EntityTriple:
    try:
        return EntityTriple(namespace, kind, name)
    except ValueError as e:
        raise InputError(str(e)) from None


@router.get("/docs")
def docs_home(request: Request, q: str = "", owner: str = "") -> Response:
    service = _techdocs(request)
    everything = documented_entities(service)
    rows = [r for r in documented_entities(service, q, owner)] if (q or owner) else everything
    owners = sorted({r.owner for r in everything if r.owner}, key=str.lower)
    return _render(request, "techdocs/home.html", rows=rows, total=len(everything), q=q, owner=owner,
                   owners=owners)


@router.get("/docs/{namespace}/{kind}/{name}")
def docs_root(namespace: str, kind: str, name: str) -> Response:
    triple = _triple(namespace, kind, name)
    return RedirectResponse(f"/docs/{triple.path}/", status_code=307)


@router.post("/docs/{namespace}/{kind}/{name}/rebuild")
def rebuild(request: Request, namespace: str, kind: str, name: str, path: str = Form("")) -> Response:
    triple = _triple(namespace, kind, name)
    who = request.state.principal.subject
    _techdocs(request).request_build(triple, f"rebuild by {who}")
    try:
        back = safe_relpath(path)
    except InputError:
        back = ""
    back = quote(back + ("/" if back and not back.endswith((".html", "/")) else ""), safe="/-._~")
    return RedirectResponse(f"/docs/{triple.path}/{back}?rebuild=queued", status_code=303)


@router.get("/docs/{namespace}/{kind}/{name}/{path:path}")
def docs_page(request: Request, namespace: str, kind: str, name: str, path: str) -> Response:
    service = _techdocs(request)
    triple = _triple(namespace, kind, name)
    entity = service.entities.get_entity(triple.ref)
    if entity is None:
        raise NotFoundError(f"No entity {triple.ref} in the catalog; check the address")
    meta, spec = entity.get("metadata") or {}, entity.get("spec") or {}
    ctx: dict[str, Any] = {"triple": triple, "entity": entity, "meta": meta, "spec": spec,
                           "catalog_path": f"/catalog/{triple.namespace}/{triple.kind}/{triple.name}",
                           "doc_path": path, "rebuild_queued": request.query_params.get("rebuild") == "queued"}
    if not (meta.get("annotations") or {}).get(TECHDOCS_REF):
        return _render(request, "techdocs/missing.html", status=404, reason="no-docs", status_info=None, **ctx)
    status = service.build_status(triple, with_log=True)
    try:
        page = service.page(triple, path)
    except NotFoundError:
        if service.storage.has_site(triple):
            return _render(request, "techdocs/missing.html", status=404, reason="no-page",
                           status_info=status, **ctx)
        if status is None:  # first sight (a failed build waits for a push or the Rebuild button)
            status = service.sync(triple).get("build")
        return _render(request, "techdocs/missing.html", reason="not-built", status_info=status, **ctx)
    broken = (status or {}).get("brokenLinks") or []
    src = _source_page(page.path)
    return _render(request, "techdocs/page.html", page=page, body=Markup(page.body_html),
                   status_info=status, broken=broken,
                   page_broken=[b for b in broken if _source_page(b.get("page", "")) == src], **ctx)


def _source_page(value: str) -> str:
    """``sub/page.md``, ``sub/page/`` and ``sub/page.html`` name the same page."""
    v = value.strip("/").removesuffix(".md").removesuffix(".html")
    if v == "index" or v.endswith("/index"):
        v = v[: -len("index")]
    return v.strip("/")

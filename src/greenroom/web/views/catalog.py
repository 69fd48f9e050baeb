"""The catalog list and the entity page (about, relations, graph, errors, definition, YAML, tabs)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse

from greenroom.core.errors import InputError, NotFoundError
from greenroom.web.engine.text import highlight, to_yaml
from greenroom.web.model import FORWARD, entity_ref
from greenroom.web.service.catalog import FILTER_LABELS, GRAPH_TYPES, SORTS, ListParams
from greenroom.web.views.common import PageRoute, catalog, pages, web

router = APIRouter(route_class=PageRoute)

ORPHAN = "backstage.io/orphan"
SOURCE = "backstage.io/source-location"
MANAGED_BY = "backstage.io/managed-by-location"
MAX_VALUES_PER_FILTER = 50


@router.get("/catalog")
def catalog_list(request: Request) -> Response:
    multi = {k: request.query_params.getlist(k) for k in request.query_params}
    # Every chip links to the list without itself, so the page grows with the square of the
    # values: a few thousand repeated parameters would render hundreds of megabytes.
    crowded = next((k for k, v in multi.items() if len(v) > MAX_VALUES_PER_FILTER), None)
    if crowded is not None:
        raise InputError(f"{crowded}: at most {MAX_VALUES_PER_FILTER} values at once; remove some filters")
    p = ListParams.from_query(multi)
    data = pages(request).list_page(p)
    kinds = [k.lower() for k in p.filters.get("kind", [])]
    active = {"api": "apis", "group": "teams"}.get(kinds[0], "catalog") if len(kinds) == 1 else "catalog"
    return web(request).render(request, "catalog_list.html", active=active, p=p, data=data,
                               labels=FILTER_LABELS,
                               sorts=list(SORTS), urlencode=urlencode)


def _graph_params(request: Request) -> tuple[int, set[str]]:
    try:
        depth = min(max(int(request.query_params.get("depth", "1")), 1), 4)
    except ValueError:
        depth = 1
    chosen = {t for t in request.query_params.getlist("rel") if t in FORWARD}
    return depth, chosen or set(FORWARD)


@router.get("/catalog/{namespace}/{kind}/{name}")
def entity_page(request: Request, namespace: str, kind: str, name: str,
                tab: str = Query("overview")) -> Response:
    w = web(request)
    entity = catalog(request).get_by_name(kind, namespace, name)
    tabs = w.tabs_for(entity)
    current = next((t for t in tabs if t.key == tab), tabs[0])
    p = pages(request)
    meta = entity.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    ref = entity_ref(entity)
    ctx: dict[str, Any] = {"entity": entity, "meta": meta, "spec": entity.get("spec") or {},
                           "annotations": annotations, "ref": ref, "tabs": tabs, "tab": current,
                           "orphan": str(annotations.get(ORPHAN, "")).lower() == "true",
                           "problems": (entity.get("status") or {}).get("items") or [],
                           "source": _source(annotations)}
    if current.key == "overview":
        depth, types = _graph_params(request)
        ctx.update(relations=p.relations(entity), graph=p.graph(entity, depth, types),
                   depth=depth, rel_types=types, graph_types=GRAPH_TYPES)
        kind_l = ref.kind
        if kind_l == "group":
            groups = p.descendant_groups(ref.ref)
            owned, total = p.owned_by(groups)
            ctx.update(owned=owned, owned_total=total, owned_groups=groups,
                       owned_groups_query=[("ownedby", g) for g in groups])
        elif kind_l == "user":
            groups = sorted({r["targetRef"] for r in entity.get("relations", []) if r.get("type") == "memberOf"})
            owned, total = p.owned_by([ref.ref, *groups])
            ctx.update(owned=owned, owned_total=total, owned_groups=groups,
                       owned_groups_query=[("ownedby", g) for g in [ref.ref, *groups]])
        elif kind_l == "location":
            ctx.update(location=p.location_row_for(ref.ref))
    elif current.key == "definition":
        spec = entity.get("spec") or {}
        definition = spec.get("definition")
        text = definition if isinstance(definition, str) else to_yaml(definition)
        api_type = str(spec.get("type", "")).lower()
        ctx.update(definition_html=highlight(text, api_type), api_type=api_type,
                   swagger=api_type == "openapi" and w.vendor_available("swagger-ui/swagger-ui-bundle.js"))
    elif current.key == "yaml":
        ctx.update(yaml_html=highlight(to_yaml(_authored(entity)), "yaml"))
    else:
        ctx.update(tab_html=w.tab_content(current, entity, request.state.principal))
    return w.render(request, "entity.html", active="catalog", **ctx)


@router.get("/catalog/{namespace}/{kind}/{name}/definition")
def entity_definition(request: Request, namespace: str, kind: str, name: str) -> Response:
    """The raw API definition, for the interactive viewer (same-origin fetch) and download."""
    entity = catalog(request).get_by_name(kind, namespace, name)
    definition = (entity.get("spec") or {}).get("definition")
    if definition is None:
        raise NotFoundError(f"{entity_ref(entity).ref} has no spec.definition")
    text = definition if isinstance(definition, str) else to_yaml(definition)
    return PlainTextResponse(text, headers={"content-security-policy": "default-src 'none'",
                                            "x-content-type-options": "nosniff"})


@router.post("/catalog/{namespace}/{kind}/{name}/delete")
def delete_orphan(request: Request, namespace: str, kind: str, name: str) -> Response:
    """Delete an orphaned entity (what the orphan warning offers)."""
    svc = catalog(request)
    entity = svc.get_by_name(kind, namespace, name)
    svc.delete_by_uid(str(entity["metadata"]["uid"]))
    return RedirectResponse("/catalog?" + urlencode({"deleted": entity_ref(entity).ref}), status_code=303)


def _source(annotations: dict[str, Any]) -> dict[str, str] | None:
    """Where the entity's file lives: a link for url locations, a path for file locations."""
    raw = annotations.get(SOURCE) or annotations.get(MANAGED_BY)
    if not isinstance(raw, str):
        return None
    type_, _, target = raw.partition(":")
    if type_ == "url" and target.startswith(("http://", "https://")):
        return {"type": "url", "target": target, "href": target}
    return {"type": type_, "target": target, "href": ""}


def _authored(entity: dict[str, Any]) -> dict[str, Any]:
    """The entity as its author wrote it, plus what the catalog computed, in Backstage's order."""
    order = ["apiVersion", "kind", "metadata", "spec", "relations", "status"]
    return {k: entity[k] for k in order if k in entity} | {k: v for k, v in entity.items() if k not in order}

"""Backstage's catalog REST API under ``/api/catalog``: paths, parameters, bodies and error shapes
of ``@backstage/plugin-catalog-backend`` 4.0, so Backstage clients keep working."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse

from greenroom.catalog.service import CatalogService, EntityQuery
from greenroom.core.errors import InputError, NotFoundError

router = APIRouter(tags=["catalog"])

MAX_LIMIT = 10_000
MAX_FILTER_PARAMS = 50
# Bounds on what one query may ask for. Each filter key, alternative and order field becomes a
# condition or join in one SQL statement (SQLite refuses expression trees deeper than 1000, and
# ordering costs grow with every field), and a JSON predicate's $all over $any multiplies its
# alternatives: without these a single request can hold a worker for minutes or exhaust memory.
MAX_FILTER_KEYS = 50
MAX_ORDER_FIELDS = 20
MAX_PREDICATE_DEPTH = 16
# Offsets are sent to the database as a 64-bit integer; past any real catalog's size anyway.
MAX_OFFSET = 2**31 - 1
# A full-text term becomes a LIKE pattern, which SQLite caps at 50,000 bytes.
MAX_TERM_LENGTH = 1000


def _svc(request: Request) -> CatalogService:
    svc: CatalogService = request.app.state.portal.services["catalog"]
    return svc


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


# --- parameter parsing (Backstage's formats) ---------------------------------------------------

def parse_filters(values: list[str]) -> list[dict[str, list[str] | None]]:
    """``filter=kind=component,spec.type=service`` (AND inside one parameter, OR between
    parameters; a repeated key within one parameter accepts any of its values; a key without
    ``=`` means the key exists)."""
    if len(values) > MAX_FILTER_PARAMS:
        raise InputError(f"too many filter parameters ({len(values)}); at most {MAX_FILTER_PARAMS}")
    out: list[dict[str, list[str] | None]] = []
    for raw in values:
        all_of: dict[str, list[str] | None] = {}
        for statement in raw.split(","):
            statement = statement.strip()
            if not statement:
                continue
            key, eq, value = statement.partition("=")
            key, value = key.strip(), value.strip()
            if not key:
                raise InputError(f"Invalid filter '{raw}': a statement has no key; use key=value")
            if not eq:
                all_of.setdefault(key, None)
                continue
            current = all_of.get(key)
            all_of[key] = (current or []) + [value]
            if len(all_of) > MAX_FILTER_KEYS:
                raise InputError(f"Invalid filter: more than {MAX_FILTER_KEYS} keys in one filter parameter")
        if all_of:
            out.append(all_of)
    return out


def parse_fields(values: list[str]) -> list[str] | None:
    fields = [f.strip() for v in values for f in v.split(",") if f.strip()]
    return fields or None


def parse_order(values: list[str]) -> list[tuple[str, str]]:
    if len(values) > MAX_ORDER_FIELDS:
        raise InputError(f"too many orderField parameters ({len(values)}); at most {MAX_ORDER_FIELDS}")
    out = []
    for v in values:
        field, _, direction = v.partition(",")
        direction = (direction or "asc").strip().lower()
        if not field.strip() or direction not in ("asc", "desc"):
            raise InputError(f"Invalid orderField '{v}'; use field,asc or field,desc")
        out.append((field.strip(), direction))
    return out


def parse_limit(raw: Any, default: int | None) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"Invalid limit '{str(raw)[:40]}'; must be a whole number") from None
    if value < 0 or value > MAX_LIMIT:
        raise InputError(f"Invalid limit {value}; must be between 0 and {MAX_LIMIT}")
    return value


def parse_offset(raw: Any) -> int:
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"Invalid offset '{str(raw)[:40]}'; must be a whole number") from None
    if value < 0 or value > MAX_OFFSET:
        raise InputError(f"Invalid offset {value}; must be between 0 and {MAX_OFFSET}")
    return value


def encode_cursor(q: EntityQuery, offset: int, total: int) -> str:
    body = {"f": q.filters, "o": q.order, "t": q.full_text_term, "tf": q.full_text_fields,
            "off": offset, "total": total}
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[EntityQuery, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = orjson.loads(raw)
        q = EntityQuery(
            filters=[{str(k): (None if v is None else [str(x) for x in v]) for k, v in alt.items()}
                     for alt in body["f"]],
            order=[(str(f), str(d)) for f, d in body["o"]],
            full_text_term=body.get("t"),
            full_text_fields=body.get("tf"),
            offset=int(body["off"]),
        )
        if not 0 <= q.offset <= MAX_OFFSET or any(d not in ("asc", "desc") for _, d in q.order):
            raise ValueError
        _check_query_shape(q)
        return q, int(body.get("total", 0))
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError, OverflowError,
            orjson.JSONDecodeError, InputError):
        raise InputError("Malformed cursor; use the nextCursor or prevCursor of a previous response") from None


def _check_query_shape(q: EntityQuery) -> None:
    """A decoded cursor carries filters and order as data: hold it to the bounds of a request."""
    if len(q.filters) > MAX_FILTER_PARAMS or any(len(alt) > MAX_FILTER_KEYS for alt in q.filters):
        raise ValueError
    if len(q.order) > MAX_ORDER_FIELDS:
        raise ValueError
    if q.full_text_fields is not None and not _strings(q.full_text_fields):
        raise ValueError
    if q.full_text_term is not None and (not isinstance(q.full_text_term, str)
                                         or len(q.full_text_term) > MAX_TERM_LENGTH):
        raise ValueError


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def parse_term(raw: Any) -> str | None:
    term = str(raw or "").strip()
    if len(term) > MAX_TERM_LENGTH:
        raise InputError(f"full text term: {len(term)} characters; at most {MAX_TERM_LENGTH}")
    return term or None


def predicate_to_filters(query: Any, depth: int = 0) -> list[dict[str, list[str] | None]]:
    """The JSON ``query`` of POST by-query/facets/by-refs: ``{key: value}``, ``{key: {$in: [...]}}``,
    ``{key: {$exists: true}}``, combined with ``$all`` / ``$any``. The result is a disjunction of
    conjunctions, bounded like the GET form (``MAX_FILTER_PARAMS`` alternatives of at most
    ``MAX_FILTER_KEYS`` keys); nesting deeper than ``MAX_PREDICATE_DEPTH`` is refused."""
    if query in (None, {}):
        return []
    if not isinstance(query, dict):
        raise InputError("query: must be an object such as {\"kind\": \"component\"}")
    if depth > MAX_PREDICATE_DEPTH:
        raise InputError(f"query: nested deeper than {MAX_PREDICATE_DEPTH} levels of $all/$any")

    def bounded(alts: list[dict[str, list[str] | None]]) -> list[dict[str, list[str] | None]]:
        if len(alts) > MAX_FILTER_PARAMS:
            raise InputError(f"query: expands to more than {MAX_FILTER_PARAMS} alternatives; "
                             "simplify the $any branches")
        if any(len(a) > MAX_FILTER_KEYS for a in alts):
            raise InputError(f"query: more than {MAX_FILTER_KEYS} keys in one alternative")
        # Every value is a bound parameter; PostgreSQL takes at most 65,535 per statement.
        if sum(len(v) for a in alts for v in a.values() if v) > MAX_LIMIT:
            raise InputError(f"query: more than {MAX_LIMIT} values in all; split the query")
        return alts

    def subqueries(key: str, val: Any) -> list[Any]:
        if not isinstance(val, list):
            raise InputError(f"query: {key} takes an array of objects, e.g. {{\"{key}\": [{{\"kind\": \"api\"}}]}}")
        return val

    def conj(obj: dict[str, Any]) -> list[dict[str, list[str] | None]]:
        if len(obj) > MAX_FILTER_KEYS:
            raise InputError(f"query: more than {MAX_FILTER_KEYS} keys in one object")
        alts: list[dict[str, list[str] | None]] = [{}]
        for key, val in obj.items():
            if key == "$all":
                for sub in subqueries(key, val):
                    sub_alts = predicate_to_filters(sub, depth + 1)
                    alts = bounded([{**a, **s} for a in alts for s in (sub_alts or [{}])])
            elif key == "$any":
                sub_alts = bounded([s for sub in subqueries(key, val) for s in predicate_to_filters(sub, depth + 1)])
                alts = bounded([{**a, **s} for a in alts for s in (sub_alts or [{}])])
            elif key.startswith("$"):
                raise InputError(f"query: operator {key} is not supported; use $all, $any, $in, $exists")
            elif isinstance(val, dict):
                if "$in" in val:
                    if not isinstance(val["$in"], list):
                        raise InputError(f"query: {key}: $in takes an array of values")
                    vals = [str(v) for v in val["$in"]]
                    alts = [{**a, key: vals} for a in alts]
                elif val.get("$exists") is True:
                    alts = [{**a, key: None} for a in alts]
                else:
                    raise InputError(f"query: {key}: use a value, {{$in: [...]}} or {{$exists: true}}")
            else:
                alts = [{**a, key: [str(val).lower() if isinstance(val, bool) else str(val)]} for a in alts]
        return bounded(alts)

    return conj(query)


# --- entities ------------------------------------------------------------------------------------

@router.get("/entities", summary="List entities (Backstage's legacy list)")
def list_entities(request: Request, filter: list[str] = Query(default=[]),
                  fields: list[str] = Query(default=[]), limit: str | None = None,
                  offset: str | None = None, after: str | None = None,
                  order: list[str] = Query(default=[])) -> Response:
    if after:
        q, _ = decode_cursor(after)
    else:
        if len(order) > MAX_ORDER_FIELDS:
            raise InputError(f"too many order parameters ({len(order)}); at most {MAX_ORDER_FIELDS}")
        q = EntityQuery(filters=parse_filters(filter), order=[
            (o.partition(":")[2] or o, o.partition(":")[0] if ":" in o else "asc") for o in order])
        q.offset = parse_offset(offset)
    q.fields = parse_fields(fields)
    q.limit = parse_limit(limit, None)
    page = _svc(request).query(q)
    resp = _json(page.items)
    if q.limit is not None and page.next_offset is not None:
        nq = EntityQuery(filters=q.filters, order=q.order)
        resp.headers["link"] = f'<?after={encode_cursor(nq, page.next_offset, page.total)}>; rel="next"'
    return resp


def _query_response(svc: CatalogService, q: EntityQuery, include_total: bool = True) -> Response:
    page = svc.query(q, raw=True)
    info: dict[str, str] = {}
    if page.next_offset is not None:
        info["nextCursor"] = encode_cursor(q, page.next_offset, page.total)
    if page.prev_offset is not None:
        info["prevCursor"] = encode_cursor(q, page.prev_offset, page.total)
    return _json({"items": page.items, "totalItems": page.total if include_total else 0, "pageInfo": info})


@router.get("/entities/by-query", summary="Query entities with filters, ordering and cursors")
def query_entities(request: Request, filter: list[str] = Query(default=[]),
                   fields: list[str] = Query(default=[]), limit: str | None = None,
                   offset: str | None = None, orderField: list[str] = Query(default=[]),
                   cursor: str | None = None, fullTextFilterTerm: str | None = None,
                   fullTextFilterFields: list[str] = Query(default=[]),
                   totalItems: str | None = None) -> Response:
    if cursor:
        q, _ = decode_cursor(cursor)
    else:
        q = EntityQuery(filters=parse_filters(filter), order=parse_order(orderField),
                        full_text_term=parse_term(fullTextFilterTerm),
                        full_text_fields=parse_fields(fullTextFilterFields),
                        offset=parse_offset(offset))
    q.fields = parse_fields(fields)
    q.limit = parse_limit(limit, 20)
    return _query_response(_svc(request), q, totalItems != "exclude")


@router.post("/entities/by-query", summary="Query entities with a JSON predicate")
def query_entities_post(request: Request, body: dict[str, Any] | None = Body(default=None)) -> Response:
    body = body or {}
    if body.get("cursor"):
        q, _ = decode_cursor(str(body["cursor"]))
    else:
        full = body.get("fullTextFilter") or {}
        order_by = body.get("orderBy") or []
        if not isinstance(full, dict) or not (full.get("fields") is None or _strings(full["fields"])):
            raise InputError("fullTextFilter: must be an object {term, fields}, fields an array of strings")
        if not isinstance(order_by, list) or not all(isinstance(o, dict) for o in order_by):
            raise InputError("orderBy: must be an array of {field, order} objects")
        if len(order_by) > MAX_ORDER_FIELDS:
            raise InputError(f"orderBy: at most {MAX_ORDER_FIELDS} fields")
        q = EntityQuery(
            filters=predicate_to_filters(body.get("query")),
            order=[(str(o.get("field")), str(o.get("order", "asc"))) for o in order_by],
            full_text_term=parse_term(full.get("term")),
            full_text_fields=full.get("fields"),
            offset=parse_offset(body.get("offset")),
        )
        if any(d not in ("asc", "desc") or not f for f, d in q.order):
            raise InputError("orderBy: each item needs a field and order asc or desc")
    q.fields = _body_fields(body)
    q.limit = parse_limit(body.get("limit"), 20)
    return _query_response(_svc(request), q, body.get("totalItems") != "exclude")


def _body_fields(body: dict[str, Any]) -> list[str] | None:
    fields = body.get("fields")
    if fields in (None, []):
        return None
    if not _strings(fields):
        raise InputError("fields: must be an array of field paths such as [\"kind\", \"metadata.name\"]")
    return list(fields)


@router.post("/entities/by-refs", summary="Get a batch of entities by ref")
def entities_by_refs(request: Request, body: dict[str, Any] = Body(...),
                     filter: list[str] = Query(default=[])) -> Response:
    refs = body.get("entityRefs")
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InputError("entityRefs: required; give an array of entity ref strings")
    if len(refs) > MAX_LIMIT:
        raise InputError(f"entityRefs: at most {MAX_LIMIT} refs per request")
    fields = _body_fields(body)
    return _json({"items": _svc(request).by_refs(refs, fields, raw=True)})


@router.get("/entities/by-name/{kind}/{namespace}/{name}", summary="Get an entity by its name")
def entity_by_name(request: Request, kind: str, namespace: str, name: str) -> Response:
    return _json(_svc(request).get_by_name_raw(kind, namespace, name))


@router.get("/entities/by-name/{kind}/{namespace}/{name}/ancestry", summary="Where an entity came from")
def entity_ancestry(request: Request, kind: str, namespace: str, name: str) -> Response:
    return _json(_svc(request).ancestry(kind, namespace, name))


@router.get("/entities/by-uid/{uid}", summary="Get an entity by its uid")
def entity_by_uid(request: Request, uid: str) -> Response:
    return _json(_svc(request).get_by_uid(uid))


@router.delete("/entities/by-uid/{uid}", status_code=204, summary="Delete an entity by its uid")
def delete_entity(request: Request, uid: str) -> Response:
    # Idempotent, as in Backstage: an unknown uid is 204 too, so CatalogClient.removeEntityByUid
    # resolves (Backstage's catalog deletes by uid without looking the entity up first).
    try:
        _svc(request).delete_by_uid(uid)
    except NotFoundError:
        pass
    return Response(status_code=204)


@router.get("/entity-facets", summary="Counts of the values of entity fields")
def entity_facets(request: Request, facet: list[str] = Query(default=[]),
                  filter: list[str] = Query(default=[])) -> Response:
    if not facet:
        raise InputError("facet: required; e.g. ?facet=kind")
    return _json(_svc(request).facets(facet, parse_filters(filter)))


@router.post("/entity-facets", summary="Facets with a JSON predicate")
def entity_facets_post(request: Request, body: dict[str, Any] = Body(...)) -> Response:
    facets = body.get("facets")
    if not isinstance(facets, list) or not facets:
        raise InputError("facets: required; give an array of field names")
    return _json(_svc(request).facets([str(f) for f in facets], predicate_to_filters(body.get("query"))))


@router.post("/refresh", summary="Read an entity's location again, now")
def refresh(request: Request, body: dict[str, Any] = Body(...)) -> Response:
    ref = body.get("entityRef")
    if not isinstance(ref, str) or not ref:
        raise InputError("entityRef: required")
    _svc(request).refresh(ref)
    return Response(status_code=200)


@router.post("/validate-entity", summary="Validate an entity without storing it")
def validate_entity(request: Request, body: dict[str, Any] = Body(...)) -> Response:
    if not isinstance(body.get("entity"), dict):
        raise InputError("entity: required; give the entity object")
    location = body.get("location")
    if not isinstance(location, str):
        raise InputError("location: required; e.g. url:https://host/catalog-info.yaml")
    problems = _svc(request).validate_entity(body["entity"], location)
    if problems:
        return JSONResponse({"errors": [{"name": p.name, "message": p.message} for p in problems]},
                            status_code=400)
    return Response(status_code=200)


# --- locations -----------------------------------------------------------------------------------

def _loc(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "type": row["type"], "target": row["target"], "entityRef": row["entity_ref"] or ""}


@router.get("/locations", summary="List registered locations")
def list_locations(request: Request) -> Response:
    return _json([{"data": _loc(r)} for r in _svc(request).list_locations()])


@router.post("/locations/by-query", summary="Query registered locations")
def query_locations(request: Request, body: dict[str, Any] | None = Body(default=None)) -> Response:
    body = body or {}
    rows = [_loc(r) for r in _svc(request).list_locations()]
    query = body.get("query") or {}
    if isinstance(query, dict):
        for key in ("type", "target", "id"):
            if key in query:
                rows = [r for r in rows if r[key] == query[key]]
    limit = parse_limit(body.get("limit"), 100) or 100
    offset = 0
    if body.get("cursor"):
        try:
            offset = int(base64.urlsafe_b64decode(str(body["cursor"]) + "==").decode())
            if offset < 0:
                raise ValueError
        except (ValueError, binascii.Error):
            raise InputError("Malformed cursor") from None
    page = rows[offset:offset + limit]
    info = {}
    if offset + limit < len(rows):
        info["nextCursor"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
    return _json({"items": page, "totalItems": len(rows), "pageInfo": info})


@router.post("/locations", status_code=201, summary="Register a location and read it at once")
def create_location(request: Request, body: dict[str, Any] = Body(...), dryRun: str | None = None,
                    onConflict: str | None = None) -> Response:
    type_, target = body.get("type"), body.get("target")
    if not isinstance(type_, str) or not isinstance(target, str):
        raise InputError("type and target: required strings, e.g. {\"type\": \"url\", \"target\": \"https://...\"}")
    if onConflict not in (None, "reject", "refresh"):
        raise InputError("onConflict: use reject or refresh")
    dry_run = dryRun in ("true", "1", "")
    result = _svc(request).register_location(type_, target, dry_run=dry_run,
                                             on_conflict=onConflict or "reject")
    location = result.get("location")
    if dry_run and isinstance(location, dict) and not location.get("id"):
        # Nothing was stored, so there is no id; Backstage answers "<type>:<target>" here.
        result = {**result, "location": {**location, "id": f"{type_}:{target}"}}
    return _json(result, status=201)


@router.get("/locations/{location_id}", summary="Get a registered location")
def get_location(request: Request, location_id: str) -> Response:
    return _json(_loc(_svc(request).get_location(location_id)))


@router.put("/locations/{location_id}", summary="Change a location's type and target")
def update_location(request: Request, location_id: str, body: dict[str, Any] = Body(...)) -> Response:
    svc = _svc(request)
    svc.get_location(location_id)
    type_, target = body.get("type"), body.get("target")
    if not isinstance(type_, str) or not isinstance(target, str):
        raise InputError("type and target: required strings")
    svc.delete_location(location_id)
    result = svc.register_location(type_, target)
    return _json(result["location"])


@router.delete("/locations/{location_id}", status_code=204, summary="Unregister a location")
def delete_location(request: Request, location_id: str) -> Response:
    _svc(request).delete_location(location_id)
    return Response(status_code=204)


@router.get("/locations/by-entity/{kind}/{namespace}/{name}", summary="The location an entity came from")
def location_by_entity(request: Request, kind: str, namespace: str, name: str) -> Response:
    return _json(_loc(_svc(request).location_for_entity(kind, namespace, name)))


@router.post("/analyze-location", summary="Show what registering a location would import")
def analyze_location(request: Request, body: dict[str, Any] = Body(...)) -> Response:
    loc = body.get("location")
    if not isinstance(loc, dict) or not isinstance(loc.get("target"), str):
        raise InputError("location: required, e.g. {\"type\": \"url\", \"target\": \"https://...\"}")
    svc = _svc(request)
    type_ = loc.get("type") or "url"
    try:
        result = svc.register_location(type_, loc["target"], dry_run=True)
    except NotFoundError:
        result = {"entities": [], "exists": False}
    existing = []
    for entity in result["entities"]:
        if entity.get("kind") == "Location" and str(entity["metadata"]["name"]).startswith("generated-"):
            continue
        existing.append({"entity": entity, "isRegistered": bool(result.get("exists")),
                         "location": {"type": type_, "target": loc["target"]}})
    return _json({"existingEntityFiles": existing, "generateEntities": []})

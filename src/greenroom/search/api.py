"""``/api/search``: Backstage's query endpoint, plus suggestions and facet counts for our pages.

The query string follows Backstage's (``qs``) format: ``term=…``, ``types[0]=…`` or
``types[]=…`` or ``types=…``, ``filters[kind]=Component``, ``filters[tags][]=java``,
``pageCursor=…``, ``pageLimit=…``. Unknown parameters are ignored, as Backstage's router does.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from greenroom.core.errors import InputError
from greenroom.search.service import MAX_SUGGESTIONS, SearchService

router = APIRouter()

_INDEXED = re.compile(r"^(?P<base>[A-Za-z_]+)((?:\[[^\[\]]*\])*)$")
# Each filter field is one more condition in the search query (SQLite stops at an expression
# depth of 1000); more fields than any page shows is a mistake or an attack.
MAX_FILTER_FIELDS = 50
_PART = re.compile(r"\[([^\[\]]*)\]")


def _service(request: Request) -> SearchService:
    service: SearchService = request.app.state.portal.services["search"]
    return service


def _int(name: str, raw: str | None, default: int | None) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"{name}: {raw[:20]!r} is not a whole number") from None


def parse_query(request: Request) -> dict[str, Any]:
    """``term``, ``types``, ``filters``, ``pageCursor``, ``pageLimit`` and repeated ``facet`` from
    a ``qs``-style query string."""
    out: dict[str, Any] = {"types": [], "filters": {}, "facet": []}
    for key, value in request.query_params.multi_items():
        m = _INDEXED.match(key)
        if not m:
            continue
        base, parts = m.group("base"), _PART.findall(key)
        if base in ("types", "facet"):
            if len(parts) > 1 or (parts and parts[0] and not parts[0].isdigit()):
                raise InputError(f"{key}: expected {base}=… or {base}[]=… or {base}[0]=…")
            out[base].append(value)
        elif base == "filters":
            if not parts or not parts[0]:
                raise InputError(f"{key}: expected filters[<field>]=<value>, e.g. filters[kind]=Component")
            if len(parts) > 2 or (len(parts) == 2 and parts[1] and not parts[1].isdigit()):
                raise InputError(f"{key}: nested filters are not supported; use filters[{parts[0]}]=…")
            out["filters"].setdefault(parts[0], []).append(value)
            if len(out["filters"]) > MAX_FILTER_FIELDS:
                raise InputError(f"filters: at most {MAX_FILTER_FIELDS} fields at once")
        elif not parts and base in ("term", "pageCursor", "pageLimit", "limit"):
            out[base] = value
    return out


@router.get("/query", summary="Search every document type (Backstage's /api/search/query)")
def query(request: Request) -> JSONResponse:
    q = parse_query(request)
    page = _service(request).query(
        term=q.get("term", ""),
        types=q["types"],
        filters=q["filters"],
        page_cursor=q.get("pageCursor") or None,
        page_limit=_int("pageLimit", q.get("pageLimit"), None),
        principal=getattr(request.state, "principal", None),
    )
    return JSONResponse(page.as_json())


@router.get("/suggest", summary="As-you-type suggestions for the header search box")
def suggest(request: Request) -> JSONResponse:
    q = parse_query(request)
    limit = _int("limit", q.get("limit"), 8) or 8
    if not 1 <= limit <= MAX_SUGGESTIONS:
        raise InputError(f"limit: {limit} is outside 1..{MAX_SUGGESTIONS}")
    results = _service(request).suggest(q.get("term", ""), limit, q["types"],
                                        getattr(request.state, "principal", None))
    return JSONResponse({"results": [r.as_json() for r in results]})


@router.get("/facets", summary="Hit counts per type (tabs) or per field value (facets)")
def facets(request: Request) -> JSONResponse:
    q = parse_query(request)
    keys = q["facet"] or ["type"]
    counts = _service(request).facets(q.get("term", ""), keys, q["types"], q["filters"])
    return JSONResponse({"facets": counts})

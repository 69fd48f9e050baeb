"""Sign-in and sign-out, the home page, the search page and static files."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from greenroom.auth.model import Principal
from greenroom.auth.service import SESSION_COOKIE
from greenroom.core.errors import AuthenticationError, InputError, NotFoundError
from greenroom.web.service import STATIC, safe_next
from greenroom.web.views.common import PageRoute, pages, web

router = APIRouter(route_class=PageRoute)

SESSION_DAYS = 7


# --- sign-in -----------------------------------------------------------------------------------

@router.get("/signin")
def signin_page(request: Request, next: str = "/") -> Response:
    auth = request.app.state.portal.auth
    return web(request).render(request, "signin.html", next=safe_next(next),
                               guest_enabled=auth.guest_enabled, error=None)


def _signed_in(request: Request, principal: Principal, next_url: str) -> Response:
    resp = RedirectResponse(safe_next(next_url), status_code=303)
    resp.set_cookie(SESSION_COOKIE, request.app.state.portal.auth.session_for(principal),
                    max_age=SESSION_DAYS * 86400, httponly=True, samesite="lax",
                    secure=request.url.scheme == "https", path="/")
    return resp


@router.post("/signin/guest")
def signin_guest(request: Request, next: str = Form("/")) -> Response:
    auth = request.app.state.portal.auth
    try:
        principal = auth.sign_in_guest()
    except AuthenticationError as e:
        return web(request).render(request, "signin.html", status=403, next=safe_next(next),
                                   guest_enabled=False, error=e.message)
    return _signed_in(request, principal, next)


@router.post("/signin/token")
def signin_token(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
    auth = request.app.state.portal.auth
    try:
        principal = auth.from_token(token.strip())
    except AuthenticationError:
        return web(request).render(
            request, "signin.html", status=401, next=safe_next(next), guest_enabled=auth.guest_enabled,
            error="That token is not valid. Use the admin token from $GREENROOM_HOME/admin-token "
                  "or a token configured under backend.auth.externalAccess.")
    return _signed_in(request, principal, next)


@router.post("/signout")
def signout(request: Request) -> Response:
    resp = RedirectResponse("/signin", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


# --- home and search ---------------------------------------------------------------------------

@router.get("/")
def home(request: Request) -> Response:
    principal = request.state.principal
    p = pages(request)
    groups = p.my_groups(principal.subject) if principal.is_user else []
    owners = groups + ([principal.subject] if principal.is_user else [])
    owned, owned_total = p.owned_by(owners, limit=12)
    return web(request).render(request, "home.html", active="home", groups=groups, owned=owned,
                               owned_total=owned_total, recent=p.recent(8),
                               stats=p.stats(),
                               owned_link="/catalog?" + urlencode([("ownedby", g) for g in owners]))


# Search page tabs: (key, label, document types); facets shown per tab.
SEARCH_TABS = (("all", "All", ()), ("catalog", "Catalog", ("software-catalog",)),
               ("docs", "Docs", ("techdocs",)), ("templates", "Templates", ("templates",)))
SEARCH_FACETS = {"all": ("kind", "owner"), "catalog": ("kind", "owner", "lifecycle"),
                 "docs": ("owner", "kind"), "templates": ("owner", "tags")}


@router.get("/search")
def search(request: Request, q: str = "", type: str = "all", cursor: str | None = None) -> Response:
    term = q.strip()
    svc = request.app.state.portal.services.get("search")
    if svc is None:  # no search context: the catalog's text filter answers
        return RedirectResponse("/catalog?" + urlencode({"q": term}) if term else "/catalog", status_code=303)
    tab = next((t for t in SEARCH_TABS if t[0] == type), SEARCH_TABS[0])
    keys = SEARCH_FACETS[tab[0]]
    # Facet filters arrive as plain query parameters (?owner=team-a); only known keys count.
    filters = {k: request.query_params.getlist(k) for k in keys if request.query_params.getlist(k)}
    page, counts, facets = None, {}, {}
    if term:
        principal = request.state.principal
        try:
            page = svc.query(term, types=tab[2], filters=filters, page_cursor=cursor, page_limit=20,
                             principal=principal)
        except InputError:  # a stale or edited cursor: start again from the first page
            page = svc.query(term, types=tab[2], filters=filters, page_limit=20, principal=principal)
        counts = svc.facets(term, ["type"])["type"]
        found = svc.facets(term, list(keys), types=tab[2], filters=filters)
        facets = {k: sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))[:12] for k, v in found.items() if v}
    tabs = [(key, label, sum(counts.get(t, 0) for t in types) if types else sum(counts.values()))
            for key, label, types in SEARCH_TABS]
    base = [("q", term)] + ([("type", tab[0])] if tab[0] != "all" else [])
    return web(request).render(request, "search.html", q=term, page=page, tab=tab[0], tabs=tabs,
                               facets=facets, filters=filters, base=base,
                               filter_items=[(k, v) for k, vs in filters.items() for v in vs])


# --- static files ------------------------------------------------------------------------------

@router.get("/static/{path:path}")
def static(path: str) -> Response:
    root = STATIC.resolve()
    missing = NotFoundError(f"No static file {path[:200]!r}")
    if "\0" in path or any(p.startswith(".") for p in Path(path).parts):
        raise missing
    try:
        target = (root / path).resolve()
        found = root in target.parents and target.is_file()
    except OSError:  # a name the file system can't hold (too long) names no asset either
        found = False
    if not found:
        raise missing
    return FileResponse(target)


@router.get("/favicon.ico")
def favicon() -> Response:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

"""The web shell: renders pages with Jinja2 (autoescaped; entity data is user input), builds the
navigation from the services that exist, and renders error pages for the app's handlers.

``WebService(settings, portal_services)`` keeps a reference to the portal's live services dict,
so contexts wired after it (search, techdocs, ...) show up in the navigation and tabs at once.
It holds no per-request state; page data is read through the other contexts' services.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.routing import Match

from greenroom import __version__
from greenroom.core.config import Settings
from greenroom.web.model import ENTITY_TABS, NAVIGATION, EntityTab, NavItem, parse_ref
from greenroom.web.service.catalog import CatalogPages, FacetCache

PACKAGE = Path(__file__).resolve().parents[1]
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
VENDOR = STATIC / "vendor"

# Pages load nothing from any other host; inline styles only for third-party widgets.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
       "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")

SAFE_SCHEMES = ("http://", "https://", "mailto:")


def safe_url(url: Any) -> str | None:
    """A link target that cannot run script: http(s), mailto or a portal path; else None."""
    if not isinstance(url, str):
        return None
    u = url.strip()
    if u.lower().startswith(SAFE_SCHEMES) or (u.startswith("/") and not u.startswith("//")):
        return u
    return None


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: only a path on this portal (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def ago(ts: float | None) -> str:
    if not ts:
        return "never"
    delta = time.time() - float(ts)
    future = delta < 0
    delta = abs(delta)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if delta >= size:
            text = f"{int(delta // size)} {unit}"
            break
    else:
        text = f"{int(delta)} s"
    return f"in {text}" if future else f"{text} ago"


class WebService:
    def __init__(self, settings: Settings, portal_services: dict[str, Any]) -> None:
        self.settings = settings
        self.services = portal_services
        # Other contexts keep their page templates in <context>/templates/<context>/*.html and
        # extend "base.html"; one loader serves them all, so every page shares the shell.
        contexts = sorted(p for p in TEMPLATES.parents[1].glob("*/templates") if p != TEMPLATES)
        self.env = Environment(loader=FileSystemLoader([str(TEMPLATES), *map(str, contexts)]),
                               autoescape=select_autoescape(["html", "svg"], default=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(version=__version__, title=settings.app.title, static=self.static_url,
                                ref_link=self.ref_link, urlencode=urlencode)
        self.env.filters.update(safe_url=safe_url, ago=ago, short=lambda r: parse_ref(str(r)).short,
                                ref_path=lambda r, k="component": parse_ref(str(r), k).path,
                                qp=lambda s: quote(str(s), safe=""))
        self._static_versions: dict[str, str] = {}
        self._facets = FacetCache()
        self._served: set[str] | None = None
        if "catalog" in portal_services:  # listen from the start, so "recently changed" is full
            self._facets.attach(portal_services["catalog"])

    # --- things other contexts use -------------------------------------------------------------

    @property
    def catalog(self) -> CatalogPages:
        return CatalogPages(self.services["catalog"], self._facets)

    def has(self, service: str | None) -> bool:
        return service is None or service in self.services

    def navigation(self, pages: set[str] | None = None) -> list[NavItem]:
        """Entries whose service exists and, when ``pages`` is given, whose page is served
        (a context may land its service before its pages)."""
        return [n for n in NAVIGATION if self.has(n.service)
                and (pages is None or n.href.split("?")[0] in pages)]

    def served_pages(self, request: Request) -> set[str]:
        """Navigation paths the app serves a GET for (asked through Starlette's public
        ``matches``; routes are fixed once the app runs, so the answer is kept)."""
        if self._served is None:
            served = set()
            for item in NAVIGATION:
                path = item.href.split("?")[0]
                scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "headers": [],
                         "query_string": b"", "app": request.app}
                if any(r.matches(scope)[0] == Match.FULL for r in request.app.router.routes):
                    served.add(path)
            self._served = served
        return self._served

    def tabs_for(self, entity: Mapping[str, Any]) -> list[EntityTab]:
        return [t for t in ENTITY_TABS if self.has(t.service) and t.applies(entity)]

    def tab_content(self, tab: EntityTab, entity: Mapping[str, Any], principal: Any) -> Markup | None:
        """HTML a service provides for its tab (see model.TabProvider), or None for a placeholder."""
        provider = self.services.get(tab.service or "")
        fill = getattr(provider, "entity_tab", None)
        if fill is None:
            return None
        html = fill(tab.key, entity, principal)
        return Markup(html) if html else None

    def vendor_available(self, path: str) -> bool:
        return (VENDOR / path).is_file()

    # --- rendering -------------------------------------------------------------------------------

    def static_url(self, path: str) -> str:
        """``/static/<path>?v=<mtime>``: long cache lifetimes, new URL when the file changes."""
        v = self._static_versions.get(path)
        if v is None:
            try:
                v = str(int((STATIC / path).stat().st_mtime))
            except OSError:
                v = __version__
            self._static_versions[path] = v
        return f"/static/{path}?v={v}"

    def ref_link(self, ref: str, label: str | None = None, default_kind: str = "component") -> Markup:
        r = parse_ref(str(ref), default_kind)
        return Markup('<a href="{}" class="ref">{}</a>').format(r.path, label or r.short)

    def render(self, request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        principal = getattr(request.state, "principal", None)
        nav = self.navigation(self.served_pages(request)) if principal is not None else []
        path = request.url.path
        active = ctx.pop("active", None) or next(
            (n.key for n in reversed(nav) if n.href.split("?")[0] != "/" and path.startswith(n.href.split("?")[0])),
            None)
        html = self.env.get_template(template).render(
            request=request, principal=principal, nav=nav, active=active, path=path,
            search_q=request.query_params.get("q", "") if path in ("/search", "/catalog") else "",
            **ctx)
        resp = HTMLResponse(html, status_code=status)
        resp.headers["content-security-policy"] = CSP
        resp.headers["x-content-type-options"] = "nosniff"
        resp.headers["referrer-policy"] = "same-origin"
        resp.headers["cache-control"] = "no-store"
        return resp

    def error_page(self, request: Request, status: int, message: str) -> Response:
        """The page for a non-API error: what happened and what to do next."""
        titles = {400: "That request did not work", 401: "Please sign in", 403: "Not allowed",
                  404: "Page not found", 405: "Not allowed here", 409: "Conflict"}
        return self.render(request, "error.html", status=status, status_code=status,
                           heading=titles.get(status, "Something went wrong"), message=message)

    @staticmethod
    def signin_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?{urlencode({'next': target})}", status_code=303)

    @staticmethod
    def same_origin(request: Request) -> bool:
        """A form post comes from our own pages (CSRF defence next to SameSite=Lax cookies)."""
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin:
            return True  # non-browser clients send neither; browsers always send one on POST
        host = request.headers.get("host", "")
        return origin.split("://", 1)[-1].split("/", 1)[0] == host


__all__ = ["WebService", "escape", "safe_next", "safe_url"]


PUBLIC_PAGES = ("/signin", "/static/", "/favicon.ico")


class PageRoute(APIRoute):
    """Every portal page, whichever context serves it: anonymous visitors go to
    /signin?next=<here>; a form post whose Origin is another site is refused (next to the
    SameSite=Lax session cookie); the server-side render time goes out as Server-Timing.

    ``missing_on_input_error``: a context whose GET pages take names and paths from the URL
    answers an invalid one as the missing page it is (404), not as a form error."""

    missing_on_input_error = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        from greenroom.core.errors import InputError, NotFoundError

        handler = super().get_route_handler()
        public = self.path.startswith(PUBLIC_PAGES)
        missing_on_input_error = self.missing_on_input_error

        async def gate(request: Request) -> Response:
            web: WebService = request.app.state.portal.services["web"]
            if not public and getattr(request.state, "principal", None) is None:
                return web.signin_redirect(request)
            if request.method == "POST" and not web.same_origin(request):
                return web.error_page(request, 403, "This form was sent from another site; "
                                                    "open the page in the portal and send it again.")
            started = time.perf_counter()
            try:
                response = await handler(request)
            except InputError as e:
                if not missing_on_input_error or request.method != "GET":
                    raise
                raise NotFoundError(e.message) from None
            response.headers["server-timing"] = f"page;dur={(time.perf_counter() - started) * 1000:.2f}"
            return response

        return gate

"""What every page route shares: the sign-in gate, CSRF check and access to the services."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from greenroom.catalog.service import CatalogService
from greenroom.web.service import WebService
from greenroom.web.service.catalog import CatalogPages

PUBLIC = ("/signin", "/static/", "/favicon.ico")


def web(request: Request) -> WebService:
    svc: WebService = request.app.state.portal.services["web"]
    return svc


def pages(request: Request) -> CatalogPages:
    return web(request).catalog


def catalog(request: Request) -> CatalogService:
    svc: CatalogService = request.app.state.portal.services["catalog"]
    return svc


class PageRoute(APIRoute):
    """A page: anonymous visitors go to /signin?next=<here>; form posts must come from our own
    pages (an Origin of another site is refused, next to the SameSite=Lax session cookie)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        public = self.path.startswith(PUBLIC)

        async def gate(request: Request) -> Response:
            w = web(request)
            if not public and getattr(request.state, "principal", None) is None:
                return w.signin_redirect(request)
            if request.method == "POST" and not w.same_origin(request):
                return w.error_page(request, 403, "This form was sent from another site; "
                                                  "open the page in the portal and send it again.")
            started = time.perf_counter()
            response = await handler(request)
            # Server-side render time, for the browser's devtools and bench/pages.py.
            response.headers["server-timing"] = f"page;dur={(time.perf_counter() - started) * 1000:.2f}"
            return response

        return gate

"""What the Create pages share: the sign-in gate, the same-origin check and the services."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from greenroom.auth.model import Principal
from greenroom.catalog.service import CatalogService
from greenroom.scaffolder.service import ScaffolderService
from greenroom.web.service import WebService


def web(request: Request) -> WebService:
    svc: WebService = request.app.state.portal.services["web"]
    return svc


def scaffolder(request: Request) -> ScaffolderService:
    svc: ScaffolderService = request.app.state.portal.services["scaffolder"]
    return svc


def catalog(request: Request) -> CatalogService:
    svc: CatalogService = request.app.state.portal.services["catalog"]
    return svc


def principal(request: Request) -> Principal | None:
    who: Principal | None = getattr(request.state, "principal", None)
    return who


class CreatePageRoute(APIRoute):
    """A Create page: anonymous visitors go to /signin?next=<here>; a form post whose Origin is
    another site is refused (next to the SameSite=Lax session cookie), as the web shell's pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def gate(request: Request) -> Response:
            w = web(request)
            if principal(request) is None:
                return w.signin_redirect(request)
            if request.method == "POST" and not w.same_origin(request):
                return w.error_page(request, 403, "This form was sent from another site; "
                                                  "open the page in the portal and send it again.")
            started = time.perf_counter()
            response = await handler(request)
            response.headers["server-timing"] = f"page;dur={(time.perf_counter() - started) * 1000:.2f}"
            return response

        return gate

"""What the Create pages share: the sign-in gate, the same-origin check and the services."""

from __future__ import annotations

from fastapi import Request

from greenroom.auth.model import Principal
from greenroom.catalog.service import CatalogService
from greenroom.scaffolder.service import ScaffolderService
from greenroom.web.service import PageRoute, WebService


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


CreatePageRoute = PageRoute  # the portal's page gate (sign-in, same-origin posts)

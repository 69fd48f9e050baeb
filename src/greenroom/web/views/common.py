"""What every page route shares: the sign-in gate, CSRF check and access to the services."""

from __future__ import annotations

from fastapi import Request

from greenroom.catalog.service import CatalogService
from greenroom.web.service import PageRoute, WebService
from greenroom.web.service.catalog import CatalogPages

__all__ = ["PageRoute", "catalog", "pages", "web"]


def web(request: Request) -> WebService:
    svc: WebService = request.app.state.portal.services["web"]
    return svc


def pages(request: Request) -> CatalogPages:
    return web(request).catalog


def catalog(request: Request) -> CatalogService:
    svc: CatalogService = request.app.state.portal.services["catalog"]
    return svc

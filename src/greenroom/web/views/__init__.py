"""Server-rendered pages of the portal, mounted at "/": the shell (sign-in, home, search,
static files), the catalog (list, entity pages, graph, API definitions) and catalog admin
(register a component, locations)."""

from __future__ import annotations

from fastapi import APIRouter

from greenroom.web.views import catalog, locations, shell
from greenroom.web.views.common import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)
router.include_router(shell.router)
router.include_router(catalog.router)
router.include_router(locations.router)

__all__ = ["router"]

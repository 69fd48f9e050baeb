"""``create_app(settings)``: builds the stores, services, routers and background workers.

Nothing here holds state between requests: everything the portal keeps is in the database, so
several replicas behind a load balancer agree.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import DataError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from greenroom import __version__
from greenroom.auth.model import Principal
from greenroom.auth.service import SESSION_COOKIE, AuthService
from greenroom.core import db, logs
from greenroom.core.config import Settings
from greenroom.core.errors import AuthenticationError, GreenroomError
from greenroom.core.http import _NAMES, describe_validation, error_response, new_request_id

log = logging.getLogger("greenroom.app")

# Paths that need no identity: health, sign-in and static assets.
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/static/", "/signin", "/favicon.ico")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass
class Portal:
    """What a running portal is made of; stored on ``app.state.portal``."""

    settings: Settings
    engine: Engine
    auth: AuthService
    services: dict[str, Any] = field(default_factory=dict)
    workers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    ready: bool = False


class IdentifyMiddleware:
    """Every HTTP request: a request id, refusal of NUL in URLs, the caller's identity on
    ``request.state.principal`` (401 on the API without valid credentials), and one structured
    log line. Plain ASGI (no per-request task), so streaming bodies pass straight through."""

    def __init__(self, app: ASGIApp, portal: Portal) -> None:
        self.app = app
        self.portal = portal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        # A caller's id is echoed in the response and every log line: only a short, plain token.
        rid = request.headers.get("x-request-id", "")
        if not _REQUEST_ID.fullmatch(rid):
            rid = new_request_id()
        logs.request_id.set(rid)
        path = request.url.path
        early = self._refusal(request, path)
        if early is not None:
            early.headers["x-request-id"] = rid
            await early(scope, receive, send)
            return
        principal: Principal | None = request.state.principal
        logs.actor.set(principal.subject if principal else None)
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = rid
                if path.startswith("/static/") and "cache-control" not in headers:
                    headers["cache-control"] = "public, max-age=86400"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            logs.event(log, "http.request", logging.DEBUG, method=request.method, path=path,
                       status=status, ms=round((time.perf_counter() - started) * 1000, 2))

    def _refusal(self, request: Request, path: str) -> Response | None:
        """The response that ends the request here, or None after setting the principal."""
        portal = self.portal
        nul_in_path = "\x00" in path
        if nul_in_path or b"%00" in request.scope.get("query_string", b""):
            # No name, ref, id or filter holds NUL, and PostgreSQL text can't store it: refuse it
            # here so every database gives the same answer. A page at such a path can't exist.
            message = "the URL contains a NUL character (%00); remove it"
            if not _is_api(path) and "web" in portal.services:
                status = 404 if nul_in_path else 400
                return portal.services["web"].error_page(request, status, message)  # type: ignore[no-any-return]
            return error_response(request, 400, "InputError", message)
        principal: Principal | None = None
        try:
            principal = portal.auth.authenticate(
                request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
            )
        except AuthenticationError as e:
            if _is_api(path) and not path.startswith(PUBLIC_PREFIXES):
                return error_response(request, 401, "AuthenticationError", e.message)
            if path.startswith("/git/") and request.headers.get("authorization"):
                # Wrong credentials: say so, so git asks again. Without any, the git route
                # decides (anonymous read may be allowed).
                resp = error_response(request, 401, "AuthenticationError", e.message)
                resp.headers["WWW-Authenticate"] = 'Basic realm="greenroom"'
                return resp
        request.state.principal = principal
        return None


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path == "/api"


def create_app(settings: Settings, *, run_workers: bool = True) -> FastAPI:
    logs.configure(settings.greenroom.logLevel)
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    portal = Portal(settings=settings, engine=engine, auth=AuthService(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def start_then_work() -> None:
            try:
                await _start(portal)
            finally:
                portal.ready = True
            if run_workers:
                await asyncio.gather(*(w() for w in portal.workers))

        tasks = [asyncio.create_task(start_then_work())]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                try:
                    await t
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                    pass
            engine.dispose()

    app = FastAPI(
        title="Greenroom",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.portal = portal

    app.add_middleware(IdentifyMiddleware, portal=portal)

    @app.exception_handler(GreenroomError)
    async def _domain_error(request: Request, exc: GreenroomError) -> Response:
        if not _is_api(request.url.path) and "web" in portal.services:
            return portal.services["web"].error_page(request, exc.status_code, exc.message)
        return error_response(request, exc.status_code, exc.name, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 400, "InputError", describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        message = str(exc.detail) if exc.detail else "Not found"
        if not _is_api(request.url.path) and "web" in portal.services and status in (404, 405):
            return portal.services["web"].error_page(request, status, message)
        resp = error_response(request, status, _NAMES.get(status, "Error"), message)
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("http.unhandled", extra={"fields": {"path": request.url.path}})
        return error_response(request, 500, "Error", "Internal error; see the server log")

    @app.exception_handler(UnicodeEncodeError)
    async def _unpaired_surrogate(request: Request, exc: UnicodeEncodeError) -> Response:
        # JSON may spell an unpaired UTF-16 surrogate ("\ud800"); Python decodes it into a str
        # that no UTF-8 store, log or response can hold. That is the caller's text, not our fault.
        if exc.reason == "surrogates not allowed":
            return error_response(request, 400, "InputError",
                                  "request text contains an unpaired UTF-16 surrogate such as \\ud800; "
                                  "send valid Unicode")
        return await _unexpected(request, exc)

    @app.exception_handler(DataError)
    async def _nul_in_text(request: Request, exc: DataError) -> Response:
        # PostgreSQL text and JSON can't hold U+0000, which JSON bodies may spell "\u0000".
        if "NUL" in str(exc.orig):
            message = "request text contains a NUL character (\\u0000); remove it"
            if not _is_api(request.url.path) and "web" in portal.services:
                return portal.services["web"].error_page(request, 400, message)  # type: ignore[no-any-return]
            return error_response(request, 400, "InputError", message)
        return await _unexpected(request, exc)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> Response:
        if portal.ready and db.is_migrated(engine) and _is_ready(portal):
            return Response('{"status":"ready"}', media_type="application/json")
        return error_response(request, 503, "ServiceUnavailableError", "starting: locations not read yet")

    _build(app, portal)
    return app


def _build(app: FastAPI, portal: Portal) -> None:
    """Each context's service, router and worker, in dependency order, and the listeners that
    let contexts react to each other (a push re-reads the catalog; a catalog change updates the
    search index and queues a docs build)."""
    from greenroom.catalog import api as catalog_api
    from greenroom.catalog import worker as catalog_worker
    from greenroom.catalog.service import CatalogService
    from greenroom.forge import api as forge_api
    from greenroom.forge.service import ForgeService
    from greenroom.scaffolder import api as scaffolder_api
    from greenroom.scaffolder.service import ScaffolderService
    from greenroom.scaffolder.service.adapters import CatalogAdapter, ForgePublisher
    from greenroom.scaffolder.worker import ScaffolderWorker
    from greenroom.search import api as search_api
    from greenroom.search.model import CATALOG_TYPE, TEMPLATES_TYPE, entity_document, entity_key
    from greenroom.search.service import SearchService
    from greenroom.techdocs import api as techdocs_api
    from greenroom.techdocs import worker as techdocs_worker
    from greenroom.techdocs.engine.storage import LocalStorage
    from greenroom.techdocs.service import TechDocsService
    from greenroom.techdocs.service.indexing import DocsIndexer, template_document

    settings, engine, services = portal.settings, portal.engine, portal.services

    forge = ForgeService(settings.home / "git", base_url=settings.backend.baseUrl,
                         web_base_url=settings.app.baseUrl, anonymous_read=False)
    services["forge"] = forge
    app.include_router(forge_api.router, prefix="/api/forge")
    app.include_router(forge_api.git_router, prefix="/git")

    catalog = CatalogService(engine, settings, url_readers=[forge.read_url])
    services["catalog"] = catalog
    app.include_router(catalog_api.router, prefix="/api/catalog")
    portal.workers.append(lambda: catalog_worker.refresh_loop(catalog))

    search = SearchService(engine)
    services["search"] = search
    app.include_router(search_api.router, prefix="/api/search")

    techdocs = TechDocsService(engine, settings, LocalStorage(settings.home / "techdocs"), catalog)
    services["techdocs"] = techdocs
    app.include_router(techdocs_api.router, prefix="/api/techdocs")
    portal.workers.append(techdocs_worker.make_worker(techdocs))
    techdocs.add_build_listener(DocsIndexer(techdocs, search).on_built)

    scaffolder = ScaffolderService(engine, settings, CatalogAdapter(catalog), ForgePublisher(forge))
    services["scaffolder"] = scaffolder
    app.include_router(scaffolder_api.router, prefix="/api/scaffolder")
    portal.workers.append(ScaffolderWorker(scaffolder).run_forever)

    docs_indexer = DocsIndexer(techdocs, search)

    def on_catalog_change(changed: list[str], removed: list[str]) -> None:
        entities = [e for e in catalog.by_refs(changed) if e is not None]
        search.index(entity_document(e) for e in entities)
        search.index(template_document(e) for e in entities if e["kind"].lower() == "template")
        if removed:
            keys = [entity_key(*_triple(ref)) for ref in removed]
            search.remove(CATALOG_TYPE, keys)
            search.remove(TEMPLATES_TYPE, [k for k, ref in zip(keys, removed, strict=True)
                                           if ref.startswith("template:")])
            for ref in removed:  # an entity that is gone takes its docs out of search
                docs_indexer.index_entity(ref)
        techdocs.request_builds([e for e in entities if "backstage.io/orphan" not in
                                 (e["metadata"].get("annotations") or {})], "catalog change")

    catalog.add_listener(on_catalog_change)

    def on_push(org: str, repo: str, updates: Any) -> None:
        prefix = forge.urls.base_url + f"/git/{org}/{repo}/"
        catalog.refresh_targets(prefix)
        for e in catalog.entities_under(prefix):
            if "backstage.io/techdocs-ref" in (e["metadata"].get("annotations") or {}):
                techdocs.request_build(_ref_of(e), f"push to {org}/{repo}")

    forge.add_push_listener(on_push)

    # Pages last, so that "/" routes never shadow an API; each context's own pages first.
    for page_router in _context_pages():
        app.include_router(page_router)
    from greenroom.web import views as web_views
    from greenroom.web.service import WebService

    services["web"] = WebService(settings, services)
    app.include_router(web_views.router)


class CatalogCollator:
    """Every catalog entity as a search document (full reindex)."""

    def __init__(self, catalog: Any) -> None:
        from greenroom.search.model import CATALOG_TYPE

        self.catalog = catalog
        self.type = CATALOG_TYPE

    def collate(self) -> Any:
        from greenroom.search.model import entity_document

        for entity in self.catalog.iter_entities():
            yield entity_document(entity)


def collators(portal: Portal) -> list[Any]:
    """What ``greenroom search reindex`` rebuilds, one collator per document type."""
    from greenroom.techdocs.service.indexing import TechDocsCollator, TemplateCollator

    return [CatalogCollator(portal.services["catalog"]), TechDocsCollator(portal.services["techdocs"]),
            TemplateCollator(portal.services["catalog"])]


def _context_pages() -> list[Any]:
    """The page routers of contexts that have pages (``<context>/views.py``)."""
    from importlib.util import find_spec

    routers = []
    if find_spec("greenroom.scaffolder.views"):
        from greenroom.scaffolder import views as scaffolder_views

        routers.append(scaffolder_views.router)
    if find_spec("greenroom.techdocs.views"):
        from greenroom.techdocs import views as techdocs_views

        routers.append(techdocs_views.router)
    if find_spec("greenroom.forge.views"):
        from greenroom.forge import views as forge_views

        routers.append(forge_views.router)
    return routers


def _triple(ref: str) -> tuple[str, str, str]:
    kind, _, rest = ref.partition(":")
    namespace, _, name = rest.partition("/")
    return kind, namespace, name


def _ref_of(entity: dict[str, Any]) -> str:
    meta = entity["metadata"]
    return f"{entity['kind']}:{meta.get('namespace') or 'default'}/{meta['name']}".lower()


async def _start(portal: Portal) -> None:
    """Work that must finish before the portal reports ready: configured locations read once.
    Then the search index is checked against the catalog (a crash between a catalog write and
    its indexing leaves them apart) and rebuilt when they differ."""
    catalog = portal.services["catalog"]
    ids = await asyncio.to_thread(catalog.ensure_config_locations)
    for location_id in ids:
        await asyncio.to_thread(lambda i=location_id: catalog.process_tree(i, due_only=True))
    search = portal.services.get("search")
    if search is not None:
        from greenroom.search.model import CATALOG_TYPE

        await asyncio.to_thread(catalog.flush_listeners)
        if await asyncio.to_thread(search.count, CATALOG_TYPE) != catalog.stats()["entities"]:
            await asyncio.to_thread(search.reindex, CatalogCollator(catalog))


def _is_ready(portal: Portal) -> bool:
    return portal.ready

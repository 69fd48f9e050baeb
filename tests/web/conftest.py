"""A real portal with the web pages, on SQLite, with the corpus catalog registered.

Until ``greenroom.app._build`` wires the web context itself, :func:`wire` adds it to the app
``create_app`` returns (the same two lines ``_build`` will hold); afterwards it does nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import CORPUS, TOKEN, Server, make_settings

EXAMPLES = CORPUS / "catalog" / "backstage-examples"


def wire(app: FastAPI) -> FastAPI:
    portal = app.state.portal
    if "web" not in portal.services:
        from greenroom.web import views
        from greenroom.web.service import WebService

        portal.services["web"] = WebService(portal.settings, portal.services)
        app.include_router(views.router)
    return app


@pytest.fixture
def web_factory(tmp_path: Path, server_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``start(demo=False, register=True, **sections) -> Server`` with pages wired."""
    import greenroom.app as app_module

    original = app_module.create_app

    def create_with_web(settings: Any, **kw: Any) -> FastAPI:
        return wire(original(settings, **kw))

    monkeypatch.setattr(app_module, "create_app", create_with_web)

    def start(demo: bool = False, register: bool = True, name: str = "s", **sections: Any) -> Server:
        home = tmp_path / name
        home.mkdir(exist_ok=True)
        settings = make_settings(home, {"client": "sqlite", "connection": str(home / "greenroom.db")},
                                 greenroom={"home": str(home / "home"), "demo": demo}, **sections)
        server: Server = server_factory(settings, run_workers=False)
        if register:
            catalog = server.portal.services["catalog"]
            for f in ("all.yaml", "acme-corp.yaml"):
                catalog.register_location("file", str(EXAMPLES / f))
        return server

    return start


@pytest.fixture
def web(web_factory: Any) -> Server:
    """A demo-mode portal (guest sign-in on) with the backstage examples and ACME org."""
    return web_factory(demo=True)


def signed_in(server: Server) -> Any:
    """An httpx client carrying the session cookie a token sign-in sets."""
    import httpx

    client = httpx.Client(base_url=server.url, timeout=30)
    r = client.post("/signin/token", data={"token": TOKEN, "next": "/"})
    assert r.status_code == 303, r.text
    return client

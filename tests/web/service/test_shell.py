"""Navigation and entity tabs follow the services (and pages) that exist."""

from __future__ import annotations

from pathlib import Path

from greenroom.catalog.service import CatalogService
from greenroom.core import db
from greenroom.web.service import WebService, safe_next, safe_url
from tests.conftest import make_settings

API = {"kind": "API", "metadata": {"name": "a"}}
COMPONENT = {"kind": "Component", "metadata": {"name": "c"}}


def _web(tmp_path: Path, *services: str) -> WebService:
    """A shell over a real catalog; other services are presence markers (only their existence
    matters to navigation and tabs)."""
    settings = make_settings(tmp_path, {"client": "sqlite", "connection": str(tmp_path / "x.db")})
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    present: dict[str, object] = {name: object() for name in services if name != "catalog"}
    present["catalog"] = CatalogService(engine, settings)
    return WebService(settings, present)


def test_navigation_shows_entries_whose_service_and_page_exist(tmp_path: Path) -> None:
    web = _web(tmp_path, "catalog")
    assert [n.label for n in web.navigation()] == ["Catalog", "APIs", "Teams"]
    web.services["scaffolder"] = object()  # a context lands later: the live dict is read
    assert "Create" in [n.label for n in web.navigation()]
    assert "Create" not in [n.label for n in web.navigation({"/catalog"})]  # its page not served yet
    assert "Create" in [n.label for n in web.navigation({"/catalog", "/create"})]


def test_entity_tabs_follow_services_and_kinds(tmp_path: Path) -> None:
    web = _web(tmp_path, "catalog")
    assert [t.key for t in web.tabs_for(API)] == ["overview", "definition", "yaml"]
    assert [t.key for t in web.tabs_for(COMPONENT)] == ["overview", "yaml"]
    web.services.update(techdocs=object(), workspaces=object(), trust=object())
    assert [t.key for t in web.tabs_for(COMPONENT)] == ["overview", "docs", "workspaces", "trust", "yaml"]
    assert "workspaces" not in [t.key for t in web.tabs_for(API)]


def test_links_and_redirects_cannot_leave_or_run_script() -> None:
    assert safe_url("javascript:alert(1)") is None and safe_url(" JavaScript:x") is None
    assert safe_url("data:text/html,x") is None and safe_url("//evil.example") is None
    assert safe_url("https://ok.example/x") == "https://ok.example/x" and safe_url("/catalog") == "/catalog"
    assert safe_next("//evil.example") == "/" and safe_next("https://evil.example") == "/"
    assert safe_next("/\\evil.example") == "/" and safe_next("/catalog?kind=api") == "/catalog?kind=api"

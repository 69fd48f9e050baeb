"""The portal in Debian's Chromium (headless, never a downloaded browser): the journeys the
issue names, with screenshots of key pages in test-artifacts/web/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
ARTIFACTS.mkdir(parents=True, exist_ok=True)




def guest_page(browser: Any, server: Server, width: int = 1280) -> Any:
    ctx = browser.new_context(viewport={"width": width, "height": 900}, base_url=server.url)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.errors = errors
    page.goto("/catalog")
    assert "/signin?next=%2Fcatalog" in page.url
    page.get_by_role("button", name="Continue as guest").click()
    page.wait_for_url(re.compile(r"/catalog$"))
    return page


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_search_entity_owner_group(browser: Any, web: Server) -> None:
    page = guest_page(browser, web)
    page.goto("/")
    shot(page, "home")
    page.keyboard.press("/")  # keyboard shortcut to the header search
    page.keyboard.type("artist-lookup")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="artist-lookup", exact=True).first.click()
    page.wait_for_url("**/catalog/default/component/artist-lookup")
    assert page.get_by_role("heading", name="artist-lookup").is_visible()
    shot(page, "entity-component")
    page.locator("dl.about").get_by_role("link", name="team-a").click()
    page.wait_for_url("**/catalog/default/group/team-a")
    assert page.get_by_role("heading", name=re.compile("Owned by this team")).is_visible()
    assert page.locator("table.entities").get_by_role("link", name="artist-lookup").is_visible()
    shot(page, "group")
    assert page.errors == []


def test_filter_catalog_and_share_the_url(browser: Any, web: Server) -> None:
    page = guest_page(browser, web)
    page.get_by_role("checkbox", name=re.compile(r"^Component \d+$")).check()
    page.wait_for_url(re.compile(r"kind=Component"))
    page.get_by_role("checkbox", name=re.compile(r"^production \d+$")).check()
    page.wait_for_url(re.compile(r"lifecycle=production"))
    summary = page.locator("p.summary strong").inner_text()
    shared = page.url
    shot(page, "catalog-filtered")
    # Someone else opens the shared link and sees the same view.
    other = guest_page(browser, web)
    other.goto(shared)
    assert other.locator("p.summary strong").inner_text() == summary
    assert other.get_by_role("checkbox", name=re.compile(r"^Component \d+$")).is_checked()
    rows = other.locator("table.entities tbody tr")
    assert rows.count() == int(summary)
    for i in range(rows.count()):
        assert "production" in rows.nth(i).inner_text()


def test_graph_node_click_through(browser: Any, web: Server) -> None:
    page = guest_page(browser, web)
    page.goto("/catalog/default/component/petstore")
    graph = page.locator("#graph svg")
    assert graph.is_visible()
    page.get_by_label("Depth").select_option("2")
    page.wait_for_url(re.compile(r"depth=2"))
    assert page.locator('#graph a.node[data-ref="group:default/boxoffice"]').count() == 1  # team-c's parent
    shot(page, "entity-graph-depth2")
    page.locator('#graph a.node[data-ref="api:default/streetlights"]').click()
    page.wait_for_url("**/catalog/default/api/streetlights")
    assert page.get_by_role("heading", name="streetlights").is_visible()


def test_openapi_definition_is_interactive(browser: Any, web: Server) -> None:
    page = guest_page(browser, web)
    page.goto("/catalog/default/api/petstore?tab=definition")
    if page.locator("#swagger-ui").count():
        page.wait_for_selector("#swagger-ui[data-ready] .opblock", timeout=15000)
        page.locator('.opblock-summary-path[data-path="/pets/{petId}"]').click()
        page.get_by_text("The id of the pet to retrieve").first.wait_for(state="visible", timeout=10000)
    else:  # vendor assets not installed: the definition is still readable
        assert page.get_by_text("List all pets").first.is_visible()
    shot(page, "api-openapi")
    assert page.errors == []


def test_register_a_location_from_the_page(browser: Any, web: Server, tmp_path: Path) -> None:
    f = tmp_path / "billing" / "catalog-info.yaml"
    f.parent.mkdir()
    f.write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: billing\n"
                 "  description: Sends the invoices\nspec:\n  type: service\n  lifecycle: production\n"
                 "  owner: team-b\n")
    page = guest_page(browser, web)
    page.get_by_role("link", name="Register a component").first.click()
    page.get_by_label("URL or path").fill(str(f))
    page.get_by_role("button", name="Analyze").click()
    assert page.get_by_text("component:default/billing").is_visible()
    shot(page, "register-preview")
    page.get_by_role("button", name="Import").click()
    page.wait_for_url("**/catalog/default/component/billing?registered=*")
    assert page.get_by_text("Sends the invoices").is_visible()
    assert page.locator("dl.about").get_by_role("link", name="team-b").is_visible()


def test_processing_error_on_the_location_page(browser: Any, web: Server, tmp_path: Path) -> None:
    d = tmp_path / "broken"
    d.mkdir()
    (d / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: broken-things\n"
        "spec:\n  targets: [./nowhere.yaml]\n")
    web.portal.services["catalog"].register_location("file", str(d / "catalog-info.yaml"))
    page = guest_page(browser, web)
    page.get_by_role("link", name="Locations").click()
    row = page.locator("tr", has_text=str(d / "catalog-info.yaml"))
    row.locator("summary").click()  # the error count opens the messages
    assert "nowhere.yaml" in row.inner_text()
    shot(page, "locations")
    page.goto("/catalog?kind=location")
    page.get_by_role("link", name="broken-things", exact=True).click()
    page.wait_for_url("**/catalog/default/location/broken-things")
    alert = page.get_by_role("alert").filter(has_text="processing error")
    assert alert.is_visible() and "nowhere.yaml" in alert.inner_text()
    shot(page, "location-error")


def test_small_screen_and_not_found(browser: Any, web: Server) -> None:
    page = guest_page(browser, web, width=360)
    page.goto("/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, "home-360")
    page.goto("/catalog/default/component/artist-lookup")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, "entity-360")
    page.goto("/catalog")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, "catalog-360")
    resp = page.goto("/catalog/default/component/nope")
    assert resp is not None and resp.status == 404
    assert page.get_by_role("search").count() >= 1
    shot(page, "not-found-360")

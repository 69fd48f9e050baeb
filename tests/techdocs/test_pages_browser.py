"""Docs and search in Debian's Chromium (headless, never a downloaded browser) on a demo portal:
read a docs page and move through its navigation, header suggestions, finding a docs section
on the search page's Docs tab, and an entity ranked first. Screenshots in test-artifacts/docs/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server
from tests.techdocs.test_pages import docs_portal  # noqa: F401 - the shared module-scoped portal

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "docs"
ARTIFACTS.mkdir(parents=True, exist_ok=True)




@pytest.fixture
def page(browser: Any, docs_portal: Server) -> Iterator[Any]:  # noqa: F811
    """A guest signed in through the sign-in page, collecting script errors and failed loads."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=docs_portal.url)
    p = ctx.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    # A load cut short by our own navigation (net::ERR_ABORTED) is not a failure of the page.
    p.on("requestfailed", lambda r: None if "ABORTED" in (r.failure or "") else
         errors.append(f"request failed: {r.url} {r.failure}"))
    p.errors = errors
    p.goto("/docs")
    p.get_by_role("button", name="Continue as guest").click()
    p.wait_for_url(re.compile(r"/docs$"))
    yield p
    ctx.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_read_docs_and_follow_the_site_navigation(page: Any) -> None:
    shot(page, "docs-home")
    page.get_by_role("link", name="Tracking website").click()
    page.wait_for_url("**/docs/default/component/tracking-web/")
    nav = page.get_by_role("navigation", name="Tracking website pages")
    toc = page.get_by_role("complementary", name="On this page")
    assert nav.get_by_role("link", name="Overview").get_attribute("aria-current") == "page"
    assert toc.get_by_role("link", name="What a visitor can do").is_visible()
    # the docs image loads from the portal (naturalWidth 0 means it did not)
    img = page.locator("#docs-body img").first
    assert img.evaluate("i => i.complete && i.naturalWidth > 0")
    shot(page, "docs-page")
    toc.get_by_role("link", name="What a visitor can do").click()
    page.wait_for_url("**#what-a-visitor-can-do")
    nav.get_by_role("link", name="Local development").click()
    page.wait_for_url("**/docs/default/component/tracking-web/development/")
    assert page.get_by_role("heading", name="Local development", level=1).is_visible()
    assert page.get_by_role("navigation", name="Tracking website pages").get_by_role(
        "link", name="Local development").get_attribute("aria-current") == "page"
    assert page.locator("#docs-body .highlight, #docs-body .highlighttable").first.is_visible()
    shot(page, "docs-page-code")
    # a link inside the body goes to another portal docs page
    page.locator("#docs-body").get_by_role("link", name="releasing").first.click()
    page.wait_for_url("**/docs/default/component/tracking-web/releasing/")
    assert page.errors == []


def test_header_box_suggests_as_you_type(page: Any) -> None:
    page.goto("/")
    page.locator("#top-q").press_sequentially("route-opt", delay=40)
    first = page.locator("#top-q-suggest li").first
    first.wait_for()
    assert "Route Optimizer" in first.inner_text()
    assert page.locator("#top-q").get_attribute("aria-expanded") == "true"
    shot(page, "suggestions")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url("**/catalog/default/component/route-optimizer")
    assert page.errors == []


def test_find_a_word_of_the_docs_on_the_docs_tab(page: Any) -> None:
    page.goto("/")
    page.locator("#top-q").fill("quetzalcoatlus")
    page.locator("#top-q").press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=quetzalcoatlus"))
    tabs = page.get_by_role("navigation", name="Result types")
    tabs.get_by_role("link", name=re.compile(r"^Docs\s*1$")).click()
    page.wait_for_url(re.compile(r"type=docs"))
    result = page.locator("li.result").first
    assert result.locator("mark").first.inner_text().lower() == "quetzalcoatlus"
    shot(page, "search-docs-tab")
    result.get_by_role("link", name="Zebrafinch section").click()
    page.wait_for_url("**/docs/default/component/hostile-docs/#zebrafinch-section")
    assert page.get_by_role("heading", name=re.compile("Zebrafinch section")).is_visible()
    shot(page, "docs-hostile-sanitized")
    assert page.errors == []


def test_an_entity_name_finds_the_entity_first(page: Any) -> None:
    page.goto("/search?q=tracking-web")
    first = page.locator("li.result").first
    assert first.get_attribute("data-type") == "software-catalog"
    shot(page, "search-entity-first")
    first.locator("a.result-title").click()
    page.wait_for_url("**/catalog/default/component/tracking-web")
    page.get_by_role("link", name="Docs", exact=True).last.click()
    page.wait_for_url(re.compile(r"tab=docs"))
    assert page.get_by_role("link", name="Open docs").is_visible()
    shot(page, "entity-docs-tab")
    assert page.errors == []

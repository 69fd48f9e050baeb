"""Docs pages over HTTP on a running demo portal (SQLite): the docs home, a built page with its
navigation, TOC and broken links, sanitizing of hostile Markdown, the Rebuild button, the failed
build banner, the entity's Docs tab, and the search page with docs, templates and hostile terms.

One portal per module: the demo organisation plus two projects of our own (one hostile, one
that cannot build), all built by the portal's own worker before the first test runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from greenroom.cli import DEMO_DIR
from greenroom.core.config import LocationSpec
from tests.conftest import TOKEN, Server, make_settings

HOSTILE_INDEX = """# Hostile docs

<script>alert('index-script')</script>

<img src="x" onerror="alert('onerror')">

<p onclick="alert('click')" style="color: red; position: fixed">styled</p>

[a javascript link](javascript:alert('js'))

[a missing page](nowhere.md)

## Zebrafinch section

The word quetzalcoatlus appears only in this section of these docs.

```python
def hello(name: str) -> str:
    return f"hello {name}"
```

!!! warning "Careful"
    Admonitions are styled.
"""

HOSTILE_OTHER = """# Other page

Go [back home](index.md).

## Second heading

Plain text on the other page.
"""


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def _catalog_info(name: str, owner: str = "team-docs") -> str:
    return ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n"
            f"  name: {name}\n  description: Test docs project {name}\n"
            "  annotations:\n    backstage.io/techdocs-ref: dir:.\n"
            f"spec:\n  type: service\n  lifecycle: experimental\n  owner: {owner}\n")


def make_projects(root: Path) -> list[Path]:
    hostile = _write(root / "hostile", {
        "catalog-info.yaml": _catalog_info("hostile-docs"),
        "mkdocs.yml": "site_name: Hostile <b>site</b>\nnav:\n  - Home: index.md\n  - Other: other.md\n"
                      "plugins:\n  - techdocs-core\n",
        "docs/index.md": HOSTILE_INDEX, "docs/other.md": HOSTILE_OTHER})
    broken = _write(root / "broken", {
        "catalog-info.yaml": _catalog_info("broken-docs"),
        "mkdocs.yml": "site_name: Broken\nplugins:\n  - techdocs-core\n  - no-such-plugin-anywhere\n",
        "docs/index.md": "# Broken\n"})
    return [hostile / "catalog-info.yaml", broken / "catalog-info.yaml"]


def wait_for_builds(server: Server, count: int, timeout: float = 180) -> list[dict[str, Any]]:
    """Until ``count`` builds are recorded and none is queued or running."""
    deadline = time.time() + timeout
    builds: list[dict[str, Any]] = []
    while time.time() < deadline:
        builds = server.client.get("/api/techdocs/builds").json()
        if len(builds) >= count and all(b["status"] in ("succeeded", "failed") for b in builds):
            server.portal.services["catalog"].flush_listeners()
            return builds
        time.sleep(0.2)
    raise AssertionError(f"docs builds did not finish: {builds}")


def start_docs_portal(root: Path) -> Server:
    """A demo portal (guest sign-in on) with the demo organisation and our two projects."""
    root.mkdir(parents=True, exist_ok=True)
    settings = make_settings(root, {"client": "sqlite", "connection": str(root / "greenroom.db")},
                             greenroom={"demo": True, "home": str(root / "home")})
    settings.catalog.locations.insert(0, LocationSpec(type="file", target=str(DEMO_DIR / "catalog-info.yaml")))
    for f in make_projects(root / "projects"):
        settings.catalog.locations.append(LocationSpec(type="file", target=str(f)))
    server = Server(settings)
    # demo: tracking-web, route-optimizer, tidewater-py, developer-platform; ours: hostile, broken
    wait_for_builds(server, 6)
    return server


@pytest.fixture(scope="module")
def docs_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_docs_portal(tmp_path_factory.mktemp("docs-portal"))
    yield server
    server.stop()


def signed_in(server: Server) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=30)
    r = client.post("/signin/token", data={"token": TOKEN, "next": "/"})
    assert r.status_code == 303, r.text
    return client


@pytest.fixture(scope="module")
def browser_client(docs_portal: Server) -> Iterator[httpx.Client]:
    client = signed_in(docs_portal)
    yield client
    client.close()


def test_pages_need_sign_in(docs_portal: Server) -> None:
    r = docs_portal.anonymous.get("/docs/default/component/tracking-web/")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/signin?next=%2Fdocs%2Fdefault%2Fcomponent%2Ftracking-web%2F")


def test_docs_home_lists_every_documented_entity(browser_client: httpx.Client) -> None:
    r = browser_client.get("/docs")
    assert r.status_code == 200
    for title in ("Tracking website", "Route Optimizer", "Developer Platform", "hostile-docs", "broken-docs"):
        assert title in r.text
    row = re.search(r'<tr>\s*<td><a href="/docs/default/component/tracking-web/".*?</tr>', r.text, re.DOTALL)
    assert row is not None
    assert "parcel-trackers" in row.group(0) and "succeeded" in row.group(0)
    assert re.search(r"docs (last changed \d+ days before|changed with or after) the code", row.group(0))
    assert re.search(r"\d+ (s|min) ago", row.group(0))
    broken_row = re.search(r'<tr>\s*<td><a href="/docs/default/component/broken-docs/".*?</tr>', r.text, re.DOTALL)
    assert broken_row is not None and "failed" in broken_row.group(0)


def test_docs_home_filters_by_owner_and_text(browser_client: httpx.Client) -> None:
    by_owner = browser_client.get("/docs", params={"owner": "parcel-trackers"}).text
    assert "/docs/default/component/tracking-web/" in by_owner
    assert "/docs/default/component/route-optimizer/" not in by_owner
    by_text = browser_client.get("/docs", params={"q": "OPTIMIZER"}).text
    assert "/docs/default/component/route-optimizer/" in by_text
    assert "/docs/default/component/tracking-web/" not in by_text
    none = browser_client.get("/docs", params={"q": "<script>x</script>"}).text
    assert "No docs match" in none and "<script>x</script>" not in none


def test_page_has_site_nav_toc_and_rewritten_links(browser_client: httpx.Client) -> None:
    r = browser_client.get("/docs/default/component/tracking-web/")
    assert r.status_code == 200
    nav = re.search(r'<nav class="docs-nav".*?</nav>', r.text, re.DOTALL)
    assert nav is not None
    assert 'href="/docs/default/component/tracking-web/development/"' in nav.group(0)
    assert 'aria-current="page">Overview' in nav.group(0)
    toc = re.search(r'<aside class="docs-toc".*?</aside>', r.text, re.DOTALL)
    assert toc is not None and 'href="#what-a-visitor-can-do"' in toc.group(0)
    # relative links and images were rewritten to portal pages and the static docs route
    assert 'src="/api/techdocs/static/docs/default/component/tracking-web/img/tracking-page.svg"' in r.text
    assert 'class="admonition note"' in r.text
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    img = browser_client.get("/api/techdocs/static/docs/default/component/tracking-web/img/tracking-page.svg")
    assert img.status_code == 200 and img.headers["content-type"].startswith("image/svg+xml")
    page = browser_client.get("/docs/default/component/tracking-web/development/")
    assert page.status_code == 200 and "language-bash highlight" in page.text


def test_hostile_markdown_is_sanitized(browser_client: httpx.Client) -> None:
    r = browser_client.get("/docs/default/component/hostile-docs/")
    assert r.status_code == 200
    body = r.text
    for bad in ("index-script", "onerror", "onclick", "javascript:", "position: fixed", "<b>site</b>"):
        assert bad not in body, bad
    assert "Hostile &lt;b&gt;site&lt;/b&gt;" in body  # the site name is text, escaped
    assert 'id="zebrafinch-section"' in body and 'class="admonition warning"' in body
    assert '<span class="k">def</span>' in body  # code highlighting kept


def test_broken_internal_links_are_listed(browser_client: httpx.Client) -> None:
    body = browser_client.get("/docs/default/component/hostile-docs/").text
    here = re.search(r'<section class="alert warn broken-here".*?</section>', body, re.DOTALL)
    assert here is not None and "nowhere.md" in here.group(0)
    assert re.search(r"1 broken link in these docs", body)
    other = browser_client.get("/docs/default/component/hostile-docs/other/").text
    assert "broken-here" not in other  # the other page links only to pages that exist


def test_rebuild_button_queues_a_build_from_our_pages_only(docs_portal: Server, browser_client: httpx.Client) -> None:
    url = "/docs/default/component/hostile-docs/rebuild"
    forged = browser_client.post(url, data={"path": "other/"}, headers={"origin": "https://evil.example"})
    assert forged.status_code == 403
    r = browser_client.post(url, data={"path": "other/"}, headers={"origin": docs_portal.url})
    assert r.status_code == 303
    assert r.headers["location"] == "/docs/default/component/hostile-docs/other/?rebuild=queued"
    status = docs_portal.client.get("/api/techdocs/builds/default/component/hostile-docs").json()
    assert status["reason"].startswith("rebuild by ")
    page = browser_client.get(r.headers["location"]).text
    assert "Rebuild queued" in page
    wait_for_builds(docs_portal, 6)
    done = docs_portal.client.get("/api/techdocs/builds/default/component/hostile-docs").json()
    assert done["status"] == "succeeded"


def test_failed_build_shows_error_and_log(browser_client: httpx.Client) -> None:
    r = browser_client.get("/docs/default/component/broken-docs/")
    assert r.status_code == 200
    assert "The last docs build failed" in r.text
    log = re.search(r'<details class="build-log"><summary>Build log</summary>(.*?)</details>', r.text, re.DOTALL)
    assert log is not None and "no-such-plugin-anywhere" in log.group(1)
    assert 'action="/docs/default/component/broken-docs/rebuild"' in r.text


def test_entity_without_docs_explains_how_to_add_them(browser_client: httpx.Client) -> None:
    r = browser_client.get("/docs/default/component/tracking-api/")
    assert r.status_code == 404
    assert "backstage.io/techdocs-ref: dir:." in r.text and "mkdocs.yml" in r.text
    assert browser_client.get("/docs/default/component/no-such-thing/").status_code == 404
    missing = browser_client.get("/docs/default/component/tracking-web/no/such/page/")
    assert missing.status_code == 404 and "Go to the docs home page" in missing.text
    assert browser_client.get("/docs/default/component/tracking-web/../../x").status_code in (400, 404)
    bare = browser_client.get("/docs/default/component/tracking-web", follow_redirects=False)
    assert bare.headers["location"] == "/docs/default/component/tracking-web/"


def test_entity_docs_tab_shows_the_docs_home_inline(browser_client: httpx.Client) -> None:
    r = browser_client.get("/catalog/default/component/tracking-web", params={"tab": "docs"})
    assert r.status_code == 200
    assert 'href="/docs/default/component/tracking-web/">Open docs' in r.text
    assert "What a visitor can do" in r.text and "succeeded" in r.text
    hostile = browser_client.get("/catalog/default/component/hostile-docs", params={"tab": "docs"}).text
    assert "index-script" not in hostile and "onerror" not in hostile
    none = browser_client.get("/catalog/default/component/tracking-api", params={"tab": "docs"}).text
    assert "backstage.io/techdocs-ref" in none


def _results(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<li class="card result" data-type="([^"]+)">\s*<a href="([^"]+)"', html)


def test_search_page_finds_docs_sections_on_the_docs_tab(browser_client: httpx.Client) -> None:
    r = browser_client.get("/search", params={"q": "quetzalcoatlus"})
    assert r.status_code == 200
    assert re.search(r">Docs<span class=\"count\">1</span>", r.text)
    assert re.search(r">Catalog<span class=\"count\">0</span>", r.text)
    docs = browser_client.get("/search", params={"q": "quetzalcoatlus", "type": "docs"}).text
    assert _results(docs) == [("techdocs", "/docs/default/component/hostile-docs/#zebrafinch-section")]
    assert "<mark>quetzalcoatlus</mark>" in docs


def test_search_page_ranks_the_entity_first_and_pages(browser_client: httpx.Client) -> None:
    r = browser_client.get("/search", params={"q": "route-optimizer"})
    results = _results(r.text)
    assert results[0] == ("software-catalog", "/catalog/default/component/route-optimizer")
    facets = browser_client.get("/search", params={"q": "parcel", "owner": "parcel-trackers"}).text
    assert 'aria-current="true"><span>parcel-trackers' in facets
    kinds = re.findall(r'<span class="badge kind-(\w+)">', facets)
    assert kinds and all(k in ("component", "api", "resource", "system", "group") for k in kinds)
    many = browser_client.get("/search", params={"q": "the"}).text
    nxt = re.search(r'href="(/search\?[^"]*cursor=[^"]+)" *>Next', many.replace("&amp;", "&"))
    assert nxt is not None
    second = browser_client.get(nxt.group(1))
    assert second.status_code == 200 and "← Previous" in second.text
    assert set(_results(second.text)).isdisjoint(_results(many))


@pytest.mark.parametrize("term", [
    "<script>alert(1)</script>", "\"'><img src=x onerror=alert(1)>", "*", "OR 1=1 --", "a\x00b",
    "NEAR(a b)", "'; DROP TABLE search_documents; --", "x" * 3000, "日本語 ü", "%27",
])
def test_search_page_survives_hostile_terms(browser_client: httpx.Client, term: str) -> None:
    r = browser_client.get("/search", params={"q": term})
    assert r.status_code == (400 if "\x00" in term else 200)  # NUL: refused before routing
    assert "<script>alert(1)" not in r.text and "<img src=x" not in r.text
    bad_cursor = browser_client.get("/search", params={"q": "parcel", "cursor": "not-a-cursor!"})
    assert bad_cursor.status_code == 200


def test_suggest_api_answers_the_header_box(docs_portal: Server, browser_client: httpx.Client) -> None:
    r = browser_client.get("/api/search/suggest", params={"term": "route-opt"})  # session cookie
    assert r.status_code == 200
    first = r.json()["results"][0]
    assert first["document"]["location"] == "/catalog/default/component/route-optimizer"
    assert docs_portal.anonymous.get("/api/search/suggest", params={"term": "x"}).status_code == 401


def test_templates_are_found_on_the_templates_tab(docs_portal: Server, browser_client: httpx.Client) -> None:
    from greenroom.app import collators

    search = docs_portal.portal.services["search"]
    for collator in collators(docs_portal.portal):
        search.reindex(collator)
    r = browser_client.get("/search", params={"q": "fastapi", "type": "templates"})
    results = _results(r.text)
    assert ("templates", "/create/templates/default/python-service") in results
    assert re.search(r">Templates<span class=\"count\">[1-9]", r.text)
    # the docs index survives a full reindex the same as it was built
    again = browser_client.get("/search", params={"q": "quetzalcoatlus", "type": "docs"}).text
    assert _results(again) == [("techdocs", "/docs/default/component/hostile-docs/#zebrafinch-section")]

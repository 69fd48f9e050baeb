"""Pages over HTTP on a real server: sign-in gate, escaping, list filters, entity page, graph,
ownership, registration, locations and error pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.conftest import TOKEN
from tests.web.conftest import signed_in


def test_pages_need_a_principal_and_signin_is_public(web: Any) -> None:
    anon = web.anonymous
    r = anon.get("/catalog?kind=component")
    assert r.status_code == 303
    assert r.headers["location"] == "/signin?next=%2Fcatalog%3Fkind%3Dcomponent"
    page = anon.get("/signin?next=/catalog")
    assert page.status_code == 200
    assert "Continue as guest" in page.text and "Sign in with a token" in page.text
    css = anon.get("/static/app.css")
    assert css.status_code == 200 and "max-age" in css.headers["cache-control"]
    assert anon.get("/static/../service/__init__.py").status_code == 404


def test_token_signin_sets_a_session_and_signout_clears_it(web: Any) -> None:
    import httpx

    c = httpx.Client(base_url=web.url, timeout=30)
    bad = c.post("/signin/token", data={"token": "nope-nope", "next": "/"})
    assert bad.status_code == 401 and "not valid" in bad.text
    r = c.post("/signin/token", data={"token": TOKEN, "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()
    home = c.get("/")
    assert home.status_code == 200 and "tests" in home.text and "Sign out" in home.text
    # A form posted from another site is refused.
    assert c.post("/signout", headers={"origin": "http://evil.example"}).status_code == 403
    c.post("/signout")
    assert c.get("/").status_code == 303


def test_guest_signin_only_in_demo_mode(web_factory: Any) -> None:
    server = web_factory(demo=False, register=False, name="nodemo")
    page = server.anonymous.get("/signin")
    assert "Continue as guest" not in page.text
    assert server.anonymous.post("/signin/guest", data={"next": "/"}).status_code == 403


def test_home_shows_what_my_teams_own_and_catalog_health(web: Any) -> None:
    import httpx

    c = httpx.Client(base_url=web.url, timeout=30)
    assert c.post("/signin/guest", data={"next": "/"}).status_code == 303
    home = c.get("/").text
    # user:default/guest is a member of team-a, which owns artist-lookup; guest owns searcher.
    assert 'href="/catalog/default/group/team-a"' in home
    assert ">artist-lookup<" in home and ">searcher<" in home
    more = re.search(r'<a href="(/catalog\?ownedby=[^"]+)">All (\d+) →</a>', home)
    assert more is not None  # guest's teams own more than the home page lists
    listing = c.get(more.group(1).replace("&amp;", "&")).text
    assert f"<strong>{more.group(2)}</strong> entit" in listing
    stats = web.portal.services["catalog"].stats()
    assert f'<span class="num">{stats["entities"]}</span><span>entities</span>' in home
    nav = re.findall(r'<nav class="main-nav".*?</nav>', home, re.DOTALL)[0]
    assert ">Catalog<" in nav and ">APIs<" in nav and ">Teams<" in nav
    for absent in ("techdocs", "scaffolder", "workspaces"):
        if absent not in web.portal.services:
            label = {"techdocs": ">Docs<", "scaffolder": ">Create<", "workspaces": ">Workspaces<"}[absent]
            assert label not in nav


def test_catalog_list_filters_facets_sort_and_cursor(web: Any) -> None:
    c = signed_in(web)
    catalog = web.portal.services["catalog"]
    n_components = catalog.facets(["kind"], [])["facets"]["kind"]
    counts = {f["value"]: f["count"] for f in n_components}
    page = c.get("/catalog", params=[("kind", "Component")]).text
    assert f"<strong>{counts['Component']}</strong> entit" in page
    # Facet counts of other filters are computed under the kind filter.
    assert re.search(r'name="type" value="service"[^>]*> <span>service</span> <span class="count">\d+</span>', page)
    rows = re.findall(r'<tr>\s*<td><a href="(/catalog/[^"]+)" class="ref">', page)
    assert rows and all("/component/" in r for r in rows)
    desc = c.get("/catalog", params=[("kind", "Component"), ("sort", "name"), ("dir", "desc")]).text
    names_desc = re.findall(r'<tr>\s*<td><a href="/catalog/[^/]+/component/([^"]+)" class="ref">', desc)
    assert names_desc == sorted(names_desc, reverse=True)
    # Cursor paging with a page size of 5, filters kept in the next link.
    first = c.get("/catalog", params=[("kind", "Component"), ("limit", "5")]).text
    nxt = re.search(r'rel="next" href="([^"]+)"', first)
    assert nxt is not None
    link = nxt.group(1).replace("&amp;", "&")
    assert parse_qs(urlparse(link).query)["kind"] == ["Component"]
    second = c.get(link + "&limit=5").text
    assert "6–10 of" in second
    text = c.get("/catalog", params={"q": "wayback"}).text
    assert ">wayback-archive<" in text and ">artist-lookup<" not in text
    empty = c.get("/catalog", params={"q": "zzz-no-such-thing"}).text
    assert "Nothing matches these filters" in empty


def test_entity_page_about_relations_graph_and_yaml(web: Any) -> None:
    c = signed_in(web)
    page = c.get("/catalog/default/component/petstore")
    assert page.status_code == 200
    html = page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'href="/catalog/default/group/team-c"' in html  # owner link
    assert 'data-relation="providesApi"' in html and 'href="/catalog/default/api/streetlights"' in html
    svg = re.search(r"<svg .*?</svg>", html, re.DOTALL)
    assert svg is not None
    assert 'href="/catalog/default/api/petstore"' in svg.group(0)
    assert 'href="/catalog/default/group/team-c"' in svg.group(0)
    deeper = c.get("/catalog/default/component/petstore", params={"depth": "2"}).text
    assert deeper.count('class="node') > html.count('class="node')
    only_owner = c.get("/catalog/default/component/petstore", params={"rel": "ownerOf"}).text
    graph = re.search(r"<svg .*?</svg>", only_owner, re.DOTALL).group(0)  # type: ignore[union-attr]
    assert "team-c" in graph and "streetlights" not in graph
    yaml_tab = c.get("/catalog/default/component/petstore", params={"tab": "yaml"}).text
    assert "providesApis" in yaml_tab and "petstore-component.yaml" in yaml_tab


def test_group_page_lists_owned_through_child_groups(web: Any) -> None:
    c = signed_in(web)
    html = c.get("/catalog/default/group/backstage").text
    assert "Owned by this team" in html
    assert ">artist-lookup<" in html  # team-a, a child of backstage
    assert ">podcast-api<" in html  # team-b
    assert 'data-relation="parentOf"' in html and 'data-relation="childOf"' in html
    user = c.get("/catalog/default/user/guest").text
    assert 'data-relation="memberOf"' in user and ">searcher<" in user


def test_api_definitions_render_as_text_or_viewer(web: Any) -> None:
    c = signed_in(web)
    oas = c.get("/catalog/default/api/petstore", params={"tab": "definition"}).text
    assert 'id="swagger-ui"' in oas or '<pre class="code">' in oas
    assert "List all pets" in oas  # the text version is always on the page
    raw = c.get("/catalog/default/api/petstore/definition")
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/plain")
    assert "openapi" in raw.text
    gql = c.get("/catalog/default/api/starwars-graphql", params={"tab": "definition"})
    assert gql.status_code == 200 and 'class="tok-' in gql.text


def test_user_input_is_escaped(web: Any, tmp_path: Path) -> None:
    f = tmp_path / "evil" / "catalog-info.yaml"
    f.parent.mkdir()
    f.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: evil\n"
        "  title: '<img src=x onerror=alert(1)>'\n"
        "  description: '<script>alert(\"pwned\")</script>'\n"
        "  links:\n    - url: 'javascript:alert(1)'\n      title: click me\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: 'team-a\"><script>x</script>'\n")
    web.portal.services["catalog"].register_location("file", str(f))
    c = signed_in(web)
    html = c.get("/catalog/default/component/evil").text
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html and "unsafe link not shown" in html
    listing = c.get("/catalog", params={"q": "evil"}).text
    assert "<script>alert" not in listing and "<img src=x" not in listing


def test_register_analyze_confirm_and_unregister(web: Any, tmp_path: Path) -> None:
    f = tmp_path / "svc" / "catalog-info.yaml"
    f.parent.mkdir()
    f.write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: new-svc\n"
                 "  description: Brand new\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n")
    c = signed_in(web)
    preview = c.post("/catalog-import/analyze", data={"target": str(f)})
    assert preview.status_code == 200
    assert "component:default/new-svc" in preview.text and "would be imported" in preview.text
    assert web.portal.services["catalog"].get_entity("component:default/new-svc") is None  # dry run
    done = c.post("/catalog-import", data={"target": str(f)})
    assert done.status_code == 303 and done.headers["location"].startswith("/catalog/default/component/new-svc")
    assert "Brand new" in c.get(done.headers["location"]).text
    recent = c.get("/").text.split('id="recent-h"')[1]
    assert ">new-svc<" in recent.split("</section>")[0]
    locations = c.get("/locations").text
    assert str(f) in locations
    loc_id = re.search(r'/locations/([0-9a-f-]+)/unregister">Unregister', locations.split(str(f))[1])
    assert loc_id is not None
    confirm = c.get(f"/locations/{loc_id.group(1)}/unregister").text
    assert "component:default/new-svc" in confirm
    gone = c.post(f"/locations/{loc_id.group(1)}/unregister", data={"mode": "delete"})
    assert gone.status_code == 303
    assert c.get("/catalog/default/component/new-svc").status_code == 404


def test_register_shows_read_errors(web: Any, tmp_path: Path) -> None:
    c = signed_in(web)
    r = c.post("/catalog-import/analyze", data={"target": str(tmp_path / "missing.yaml")})
    assert r.status_code == 400 and "Could not read that location" in r.text
    assert "missing.yaml" in r.text


def test_processing_error_shows_on_the_location_page(web: Any, tmp_path: Path) -> None:
    d = tmp_path / "broken"
    d.mkdir()
    (d / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: broken-things\n"
        "spec:\n  targets: [./bad.yaml, ./nowhere.yaml]\n")
    (d / "bad.yaml").write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n"
                                "  name: bad thing!\nspec:\n  type: service\n")
    web.portal.services["catalog"].register_location("file", str(d / "catalog-info.yaml"))
    c = signed_in(web)
    html = c.get("/catalog/default/location/broken-things").text
    assert "processing error" in html and 'role="alert"' in html
    assert "nowhere.yaml" in html or "bad.yaml" in html
    locations = c.get("/locations").text
    assert 'class="danger-text"' in locations


def test_not_found_page_offers_search(web: Any) -> None:
    c = signed_in(web)
    r = c.get("/catalog/default/component/does-not-exist")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert 'role="search"' in r.text and "does-not-exist" in r.text
    r2 = c.get("/no/such/page")
    assert r2.status_code == 404 and "Page not found" in r2.text
    api = c.get("/api/catalog/entities/by-name/component/default/nope", headers={"authorization": f"Bearer {TOKEN}"})
    assert api.headers["content-type"].startswith("application/json")


def test_search_falls_back_to_catalog_text_filter(web: Any) -> None:
    c = signed_in(web)
    r = c.get("/search", params={"q": "artist"})
    if "search" in web.portal.services:
        assert r.status_code == 200 and "artist" in r.text.lower()
    else:
        assert r.status_code == 303 and r.headers["location"] == "/catalog?q=artist"

"""The catalog REST API answers like Backstage's: shapes, paging, filters, errors, refresh, orphans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CORPUS

EXAMPLES = CORPUS / "catalog" / "backstage-examples"
OPENAPI = json.loads((CORPUS / "api-responses" / "catalog-backend.openapi.json").read_text())


@pytest.fixture
def loaded(portal: Any) -> Any:
    for f in (EXAMPLES / "all.yaml", EXAMPLES / "acme-corp.yaml"):
        assert portal.client.post("/api/catalog/locations", json={"type": "file", "target": str(f)}).status_code == 201
    return portal


def write(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n---\n".join(json.dumps(d) for d in docs))
    return path


def component(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": name, "description": f"the {name} service"},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-a", **spec}}


def assert_error(r: Any, status: int, name: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["name"] == name
    assert body["error"]["message"]
    assert body["response"] == {"statusCode": status}
    assert body["request"]["method"] in ("GET", "POST", "DELETE", "PUT")
    return body


def test_every_route_requires_a_token(portal: Any) -> None:
    for path, methods in OPENAPI["paths"].items():
        url = "/api/catalog" + path.replace("{kind}", "component").replace("{namespace}", "default") \
            .replace("{name}", "x").replace("{uid}", "x").replace("{id}", "x")
        for method in methods:
            r = portal.anonymous.request(method.upper(), url, json={})
            assert_error(r, 401, "AuthenticationError")
    r = portal.anonymous.get("/api/catalog/entities", headers={"Authorization": "Bearer wrong-token"})
    assert_error(r, 401, "AuthenticationError")


def test_every_documented_path_and_method_is_served(portal: Any) -> None:
    doc = portal.client.get("/api/openapi.json").json()
    served = {(path, m.upper()) for path, ops in doc["paths"].items() for m in ops}
    for path, methods in OPENAPI["paths"].items():
        ours = "/api/catalog" + path.replace("{id}", "{location_id}")
        for method in methods:
            assert (ours, method.upper()) in served, (path, method)


def test_not_found_bodies(loaded: Any) -> None:
    body = assert_error(loaded.client.get("/api/catalog/entities/by-name/component/default/nope"), 404,
                        "NotFoundError")
    assert body["request"]["url"] == "/api/catalog/entities/by-name/component/default/nope"
    assert_error(loaded.client.get("/api/catalog/entities/by-uid/nope"), 404, "NotFoundError")
    assert_error(loaded.client.get("/api/catalog/locations/nope"), 404, "NotFoundError")


def test_by_query_filters_paging_and_fields(loaded: Any) -> None:
    c = loaded.client
    first = c.get("/api/catalog/entities/by-query", params={"filter": "kind=component", "limit": 5,
                                                             "orderField": "metadata.name,asc"}).json()
    assert set(first) == {"items", "totalItems", "pageInfo"}
    total = first["totalItems"]
    assert total > 10 and len(first["items"]) == 5 and "nextCursor" in first["pageInfo"]
    names = [e["metadata"]["name"] for e in first["items"]]
    assert names == sorted(names)
    seen, page = list(names), first
    while "nextCursor" in page["pageInfo"]:
        page = c.get("/api/catalog/entities/by-query", params={"cursor": page["pageInfo"]["nextCursor"],
                                                                "limit": 5}).json()
        seen.extend(e["metadata"]["name"] for e in page["items"])
    assert len(seen) == total == len(set(seen))
    assert seen == sorted(seen)
    back = c.get("/api/catalog/entities/by-query", params={"cursor": page["pageInfo"]["prevCursor"],
                                                            "limit": 5}).json()
    assert back["items"]

    # OR between filter params, AND inside one, repeated key = any of.
    apis = c.get("/api/catalog/entities/by-query?filter=kind=api&limit=0").json()["totalItems"]
    both = c.get("/api/catalog/entities/by-query?filter=kind=api&filter=kind=component&limit=0").json()
    assert both["totalItems"] == apis + total
    same = c.get("/api/catalog/entities/by-query?filter=kind=api,kind=component&limit=0").json()
    assert same["totalItems"] == apis + total
    services = c.get("/api/catalog/entities/by-query?filter=kind=component,spec.type=service&limit=100").json()
    assert services["items"] and all(e["spec"]["type"] == "service" for e in services["items"])
    # Case-insensitive values; relations as filter keys.
    owned = c.get("/api/catalog/entities/by-query?filter=relations.ownedBy=GROUP:default/team-a&limit=100").json()
    assert {e["metadata"]["name"] for e in owned["items"]} >= {"artist-lookup", "wayback-search"}
    # Field projection.
    slim = c.get("/api/catalog/entities/by-query?filter=kind=group&fields=metadata.name,kind&limit=3").json()
    assert all(set(e) == {"metadata", "kind"} and set(e["metadata"]) == {"name"} for e in slim["items"])


def test_full_text_facets_and_by_refs(loaded: Any) -> None:
    c = loaded.client
    r = c.get("/api/catalog/entities/by-query", params={
        "filter": "kind=component", "fullTextFilterTerm": "WAYBACK",
        "fullTextFilterFields": "metadata.name,metadata.title"}).json()
    assert {e["metadata"]["name"] for e in r["items"]} >= {"wayback-search", "wayback-archive"}
    assert all("wayback" in e["metadata"]["name"] for e in r["items"])
    facets = c.get("/api/catalog/entity-facets?facet=spec.type&facet=kind&filter=kind=component").json()
    types = {f["value"]: f["count"] for f in facets["facets"]["spec.type"]}
    assert types["service"] >= 3 and types["website"] >= 1
    assert facets["facets"]["kind"] == [{"value": "Component", "count": sum(types.values())}]
    refs = c.post("/api/catalog/entities/by-refs", json={
        "entityRefs": ["component:default/petstore", "component:default/missing", "group:team-a", "not a ref::"],
        "fields": ["metadata.name"]}).json()
    assert refs["items"] == [{"metadata": {"name": "petstore"}}, None, {"metadata": {"name": "team-a"}}, None]


def test_post_by_query_with_predicate(loaded: Any) -> None:
    r = loaded.client.post("/api/catalog/entities/by-query", json={
        "query": {"kind": "component", "spec.type": {"$in": ["website"]}},
        "orderBy": [{"field": "metadata.name", "order": "desc"}], "limit": 50})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items and all(e["spec"]["type"] == "website" for e in items)
    names = [e["metadata"]["name"] for e in items]
    assert names == sorted(names, reverse=True)


@pytest.mark.parametrize("params", [
    {"cursor": "not-a-cursor"}, {"cursor": "eyJmIjoxfQ"}, {"limit": "-1"}, {"limit": "1e9"},
    {"limit": "999999999"}, {"offset": "-5"}, {"orderField": "metadata.name,sideways"},
    {"filter": "=x"},
])
def test_hostile_parameters_are_400_not_500(portal: Any, params: dict[str, str]) -> None:
    assert_error(portal.client.get("/api/catalog/entities/by-query", params=params), 400, "InputError")


def test_injection_strings_are_just_values(loaded: Any) -> None:
    for value in ("x' OR '1'='1", "component; DROP TABLE catalog_entities; --", "%", "_", "\\"):
        r = loaded.client.get("/api/catalog/entities/by-query", params={"filter": f"kind={value}"})
        assert r.status_code == 200 and r.json()["totalItems"] == 0, value
        r = loaded.client.get("/api/catalog/entities/by-query", params={"fullTextFilterTerm": value})
        assert r.status_code == 200
    assert loaded.client.get("/api/catalog/entities/by-query?limit=0").json()["totalItems"] > 50


def test_orphans_refresh_and_delete(portal: Any, tmp_path: Path) -> None:
    c = portal.client
    f = write(tmp_path / "repo" / "catalog-info.yaml", [component("alpha"), component("beta")])
    loc = c.post("/api/catalog/locations", json={"type": "file", "target": str(f)}).json()["location"]
    beta = c.get("/api/catalog/entities/by-name/component/default/beta").json()
    assert "backstage.io/orphan" not in beta["metadata"]["annotations"]
    write(f, [component("alpha", lifecycle="deprecated")])
    assert c.post("/api/catalog/refresh", json={"entityRef": "component:default/alpha"}).status_code == 200
    alpha = c.get("/api/catalog/entities/by-name/component/default/alpha").json()
    assert alpha["spec"]["lifecycle"] == "deprecated"
    assert alpha["metadata"]["etag"] != beta["metadata"]["etag"]
    beta = c.get("/api/catalog/entities/by-name/component/default/beta").json()
    assert beta["metadata"]["annotations"]["backstage.io/orphan"] == "true"
    # Deleting an orphan removes it for good.
    assert c.delete(f"/api/catalog/entities/by-uid/{beta['metadata']['uid']}").status_code == 204
    assert c.get("/api/catalog/entities/by-name/component/default/beta").status_code == 404
    # Ancestry: alpha ← the generated Location of the registered file.
    anc = c.get("/api/catalog/entities/by-name/component/default/alpha/ancestry").json()
    assert anc["rootEntityRef"] == "component:default/alpha"
    assert anc["items"][0]["parentEntityRefs"] == [loc["entityRef"]]
    assert c.get("/api/catalog/locations/by-entity/component/default/alpha").json()["id"] == loc["id"]
    # Unregistering orphans what the location emitted.
    assert c.delete(f"/api/catalog/locations/{loc['id']}").status_code == 204
    alpha = c.get("/api/catalog/entities/by-name/component/default/alpha").json()
    assert alpha["metadata"]["annotations"]["backstage.io/orphan"] == "true"


def test_one_bad_entity_never_blocks_its_siblings(portal: Any, tmp_path: Path) -> None:
    bad = component("Bad Name!")
    f = write(tmp_path / "c.yaml", [component("good-one"), bad, {"apiVersion": "backstage.io/v1alpha1", "kind": "Widget", "metadata": {"name": "w"}},
                                   component("good-two", owner="user:")])
    body = portal.client.post("/api/catalog/locations", json={"type": "file", "target": str(f)}).json()
    names = {e["metadata"]["name"] for e in body["entities"]}
    assert "good-one" in names and "Bad Name!" not in names
    loc_entity = portal.client.get(f"/api/catalog/entities/by-name/location/default/"
                                   f"{body['location']['entityRef'].split('/')[1]}").json()
    messages = [i["error"]["message"] for i in loc_entity["status"]["items"]]
    assert any("c.yaml" in m and "metadata.name" in m for m in messages), messages
    assert any("Widget" in m for m in messages), messages


def test_duplicate_registration_conflicts_and_dry_run_stores_nothing(portal: Any, tmp_path: Path) -> None:
    f = write(tmp_path / "d.yaml", [component("delta")])
    dry = portal.client.post("/api/catalog/locations?dryRun=true", json={"type": "file", "target": str(f)})
    assert dry.status_code == 201
    assert any(e["metadata"]["name"] == "delta" for e in dry.json()["entities"])
    assert portal.client.get("/api/catalog/entities/by-name/component/default/delta").status_code == 404
    assert portal.client.post("/api/catalog/locations", json={"type": "file", "target": str(f)}).status_code == 201
    assert_error(portal.client.post("/api/catalog/locations", json={"type": "file", "target": str(f)}), 409,
                 "ConflictError")
    again = portal.client.post("/api/catalog/locations?onConflict=refresh", json={"type": "file", "target": str(f)})
    assert again.status_code == 201 and again.json()["exists"] is True


def test_disallowed_url_is_refused_without_a_request(portal: Any) -> None:
    r = portal.client.post("/api/catalog/locations", json={"type": "url", "target": "https://evil.example.com/c.yaml"})
    assert r.status_code in (400, 403)
    assert "evil.example.com" in r.json()["error"]["message"]


def test_validate_entity(portal: Any) -> None:
    ok = portal.client.post("/api/catalog/validate-entity", json={"location": "url:https://x/y.yaml",
                                                                  "entity": component("valid")})
    assert ok.status_code == 200
    bad = portal.client.post("/api/catalog/validate-entity", json={"location": "url:https://x/y.yaml",
                                                                   "entity": component("Not Valid")})
    assert bad.status_code == 400
    assert "metadata.name" in bad.json()["errors"][0]["message"]


def test_openapi_document_is_served(portal: Any) -> None:
    doc = portal.client.get("/api/openapi.json").json()
    assert "/api/catalog/entities/by-query" in doc["paths"]


def test_location_cycle_is_reported_not_followed(portal: Any, tmp_path: Path) -> None:
    def location(name: str, target: str) -> dict[str, Any]:
        return {"apiVersion": "backstage.io/v1alpha1", "kind": "Location", "metadata": {"name": name},
                "spec": {"type": "file", "target": target}}

    a = write(tmp_path / "a.yaml", [location("a", "./b.yaml"), component("in-a")])
    write(tmp_path / "b.yaml", [location("b", "./a.yaml"), component("in-b")])
    r = portal.client.post("/api/catalog/locations", json={"type": "file", "target": str(a)})
    assert r.status_code == 201
    assert portal.client.get("/api/catalog/entities/by-name/component/default/in-b").status_code == 200
    b = portal.client.get("/api/catalog/entities/by-name/location/default/b").json()
    messages = [i["error"]["message"] for i in b.get("status", {}).get("items", [])]
    locs = portal.client.get("/api/catalog/entities/by-query?filter=kind=location&limit=50").json()["items"]
    all_messages = [i["error"]["message"] for e in locs for i in e.get("status", {}).get("items", [])]
    assert any("cycle" in m and "a.yaml" in m for m in all_messages), (messages, all_messages)


def test_missing_target_and_escaping_placeholder_are_processing_errors(portal: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    api = {"apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": {"name": "leaky"},
           "spec": {"type": "openapi", "lifecycle": "production", "owner": "team-a",
                    "definition": {"$text": "../secret.txt"}}}
    f = write(tmp_path / "repo" / "catalog-info.yaml", [api, component("fine"),
              {"apiVersion": "backstage.io/v1alpha1", "kind": "Location", "metadata": {"name": "gone"},
               "spec": {"type": "file", "target": "./does-not-exist.yaml"}}])
    body = portal.client.post("/api/catalog/locations", json={"type": "file", "target": str(f)}).json()
    assert portal.client.get("/api/catalog/entities/by-name/component/default/fine").status_code == 200
    assert portal.client.get("/api/catalog/entities/by-name/api/default/leaky").status_code == 404
    everything = portal.client.get("/api/catalog/entities?limit=1000").text
    assert "TOP-SECRET" not in everything
    gen = portal.client.get(f"/api/catalog/entities/by-name/location/default/"
                            f"{body['location']['entityRef'].split('/')[1]}").json()
    messages = " ".join(i["error"]["message"] for i in gen["status"]["items"])
    assert "secret.txt" in messages and "spec.definition" in messages
    # A missing target is an error on the Location entity whose target it is.
    gone = portal.client.get("/api/catalog/entities/by-name/location/default/gone").json()
    assert "does-not-exist.yaml" in gone["status"]["items"][0]["error"]["message"]


def test_file_locations_outside_the_allowed_folders_are_refused(tmp_path: Path, server_factory: Any) -> None:
    from tests.conftest import make_settings

    allowed = tmp_path / "allowed"
    inside = write(allowed / "c.yaml", [component("inside")])
    outside = write(tmp_path / "elsewhere" / "c.yaml", [component("outside")])
    settings = make_settings(tmp_path, {"client": "sqlite", "connection": str(tmp_path / "g.db")},
                             backend={"reading": {"allowFiles": [str(allowed)]}})
    portal = server_factory(settings)
    assert portal.client.post("/api/catalog/locations", json={"type": "file", "target": str(inside)}).status_code == 201
    for target in (str(outside), "/etc/passwd", str(allowed / ".." / "elsewhere" / "c.yaml")):
        for dry in ("", "?dryRun=true"):
            r = portal.client.post(f"/api/catalog/locations{dry}", json={"type": "file", "target": target})
            body = assert_error(r, 403, "NotAllowedError")
            assert "backend.reading.allowFiles" in body["error"]["message"]
            assert "root:" not in r.text
    assert portal.client.get("/api/catalog/entities/by-name/component/default/outside").status_code == 404

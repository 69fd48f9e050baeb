"""The Backstage corpus goes in through the real API and comes out with Backstage's relations."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import CORPUS

EXAMPLES = CORPUS / "catalog" / "backstage-examples"


def register(portal: Any, path: Any) -> dict[str, Any]:
    r = portal.client.post("/api/catalog/locations", json={"type": "file", "target": str(path)})
    assert r.status_code == 201, r.text
    return r.json()


def entity(portal: Any, kind: str, name: str, namespace: str = "default") -> dict[str, Any]:
    r = portal.client.get(f"/api/catalog/entities/by-name/{kind}/{namespace}/{name}")
    assert r.status_code == 200, f"{kind}:{namespace}/{name}: {r.text}"
    return r.json()


def rels(e: dict[str, Any], rtype: str) -> set[str]:
    return {r["targetRef"] for r in e["relations"] if r["type"] == rtype}


@pytest.fixture
def examples(portal: Any) -> Any:
    register(portal, EXAMPLES / "all.yaml")
    register(portal, EXAMPLES / "acme-corp.yaml")
    register(portal, EXAMPLES / "components" / "different-namespace.yaml")
    return portal


def test_registration_is_visible_when_the_call_returns(portal: Any) -> None:
    body = register(portal, EXAMPLES / "all.yaml")
    assert body["location"]["target"].endswith("all.yaml")
    assert body["location"]["entityRef"].startswith("location:default/generated-")
    refs = {f"{e['kind']}:{e['metadata']['name']}".lower() for e in body["entities"]}
    assert "location:example-all" in refs  # what the registered file itself holds
    # The whole tree below it is readable right now, without waiting for a refresh loop.
    assert portal.client.get("/api/catalog/entities/by-name/component/default/petstore").status_code == 200
    # No waiting: every entity of the tree is readable right now.
    total = portal.client.get("/api/catalog/entities/by-query?limit=0").json()["totalItems"]
    assert total >= 35


def test_backstage_examples_relations(examples: Any) -> None:
    p = examples
    petstore = entity(p, "component", "petstore")
    assert rels(petstore, "providesApi") >= {"api:default/petstore", "api:default/streetlights",
                                             "api:default/hello-world"}
    for api in ("petstore", "streetlights", "hello-world"):
        assert "component:default/petstore" in rels(entity(p, "api", api), "apiProvidedBy")

    wayback = entity(p, "component", "wayback-search")
    assert "api:default/wayback-archive" in rels(wayback, "consumesApi")
    assert "api:default/wayback-search" in rels(wayback, "providesApi")

    for part in ("wayback-archive-ingestion", "wayback-archive-storage"):
        assert "component:default/wayback-archive" in rels(entity(p, "component", part), "partOf")
    assert {"component:default/wayback-archive-ingestion", "component:default/wayback-archive-storage"} <= rels(
        entity(p, "component", "wayback-archive"), "hasPart")

    assert "domain:default/artists" in rels(entity(p, "system", "artist-engagement-portal"), "partOf")
    for system in ("audio-playback", "podcast"):
        assert "domain:default/playback" in rels(entity(p, "system", system), "partOf")


def test_ownership_defaults_to_group_and_dangling_refs_still_relate(examples: Any) -> None:
    p = examples
    for name in ("artist-lookup", "www-artist", "wayback-search"):
        assert rels(entity(p, "component", name), "ownedBy") == {"group:default/team-a"}
    # owner: guest → a Group that does not exist; the relation is still there.
    assert rels(entity(p, "component", "playback-order"), "ownedBy") == {"group:default/guest"}
    assert rels(entity(p, "component", "searcher"), "ownedBy") == {"user:default/guest"}
    assert rels(entity(p, "domain", "playback"), "ownedBy") == {"user:default/frank.tiernan"}
    assert rels(entity(p, "domain", "audio"), "ownedBy") == {"group:default/acme-corp"}
    # Reverse direction, emitted by the owned entity, stitched onto the owner.
    assert "component:default/artist-lookup" in rels(entity(p, "group", "team-a"), "ownerOf")


def test_group_tree_and_memberships(examples: Any) -> None:
    p = examples
    assert rels(entity(p, "group", "acme-corp"), "parentOf") == {"group:default/infrastructure"}
    assert rels(entity(p, "group", "infrastructure"), "parentOf") == {"group:default/backstage",
                                                                       "group:default/boxoffice"}
    assert rels(entity(p, "group", "backstage"), "parentOf") == {"group:default/team-a", "group:default/team-b"}
    assert rels(entity(p, "group", "boxoffice"), "parentOf") == {
        "group:default/team-c", "group:default/team-d", "group:default/team-e"}
    assert rels(entity(p, "group", "team-a"), "childOf") == {"group:default/backstage"}
    members = rels(entity(p, "group", "team-a"), "hasMember")
    assert "user:development/guest" in members  # cross-namespace memberOf
    users = p.client.get("/api/catalog/entities/by-query?filter=kind=user&limit=100").json()
    assert users["totalItems"] == 17  # 16 in default, plus user:development/guest
    assert all(rels(u, "memberOf") for u in users["items"] if u["metadata"]["namespace"] == "default"
               and u["metadata"]["name"] != "guest")


def test_namespaced_entity_with_kindless_owner(examples: Any) -> None:
    e = entity(examples, "component", "different-namespace", namespace="alternative")
    assert rels(e, "ownedBy") == {"group:default/team-a"}


def test_one_platform_invalid_entity_reported_not_stored(portal: Any) -> None:
    root = CORPUS / "catalog" / "external" / "1-Platform__one-platform" / "catalog-info.yaml"
    register(portal, root)
    # CouchDB.yaml is not among the root's targets: register it on its own, as a user would.
    register(portal, root.parent / "catalog" / "resources" / "CouchDB.yaml")
    # The CouchDB resource puts dependsOn at the top level: not stored...
    resources = portal.client.get("/api/catalog/entities/by-query?filter=kind=resource&limit=100").json()
    names = {r["metadata"]["name"].lower() for r in resources["items"]}
    assert not any("couch" in n for n in names)
    assert len(names) >= 1  # ...while its siblings are.
    # ...and reported on the Location entity standing for its file, naming file and field.
    locs = portal.client.get("/api/catalog/entities/by-query?filter=kind=location&limit=100").json()["items"]
    messages = [i["error"]["message"] for e in locs for i in e.get("status", {}).get("items", [])]
    couch = [m for m in messages if "CouchDB.yaml" in m]
    assert couch, messages
    assert "dependsOn" in couch[0]
    # Namespaces and cross-namespace refs survive.
    system = entity(portal, "system", "one-platform", namespace="devex")
    assert rels(system, "ownedBy") == {"group:redhat/one-platform-devs"}


def test_same_ref_from_two_locations_is_a_conflict_first_keeps_it(portal: Any) -> None:
    register(portal, EXAMPLES / "acme-corp.yaml")
    first = entity(portal, "user", "guest")
    org = CORPUS / "catalog" / "create-app-examples" / "org.yaml"
    register(portal, org)
    after = entity(portal, "user", "guest")
    assert after["metadata"]["uid"] == first["metadata"]["uid"]
    assert after["metadata"]["annotations"]["backstage.io/managed-by-location"] == \
        first["metadata"]["annotations"]["backstage.io/managed-by-location"]
    locs = portal.client.get("/api/catalog/entities/by-query?filter=kind=location&limit=100").json()["items"]
    conflicts = [i["error"] for e in locs for i in e.get("status", {}).get("items", [])
                 if i["error"]["name"] == "ConflictError"]
    assert conflicts and "user:default/guest" in conflicts[0]["message"]
    assert "acme" in conflicts[0]["message"] and "org.yaml" in conflicts[0]["message"]

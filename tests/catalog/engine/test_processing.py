"""Location walking and relations on Backstage's example catalog, child-location safety, speed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenroom.catalog.engine import DefaultReadPolicy, process_location, process_tree
from greenroom.catalog.model import LocationSpec, Relation


@pytest.fixture(scope="module")
def examples(corpus: Path, open_policy, fake_github) -> dict:
    base = corpus / "catalog/backstage-examples"
    oas = (base / "apis/petstore-webhook.oas.yaml").read_bytes()
    # The three remote $text definitions, served by a fake github.com.
    github = fake_github({
        "/APIs-guru/openapi-directory/blob/master/APIs/archive.org/search/1.0.0/openapi.yaml": oas,
        "/APIs-guru/openapi-directory/blob/dab6854d4d599aafb0eb36e6c7ae1fe0c37509b7/APIs/spotify.com/2021.4.2/openapi.yaml": oas,
        "/APIs-guru/openapi-directory/blob/main/APIs/archive.org/wayback/1.0.0/openapi.yaml": oas,
    })
    walked = []
    with github.client() as http:
        for name in ("all.yaml", "acme-corp.yaml"):
            walked += process_tree(LocationSpec("file", str(base / name)), policy=open_policy, http=http)
    direct = LocationSpec("file", str(base / "components/different-namespace.yaml"))
    walked.append((direct, process_location(direct, origin=direct, policy=open_policy)))
    relations = {r for _, res in walked for e in res.entities for r in e.relations}
    entities = {e.ref: e for _, res in walked for e in res.entities}
    return {"walked": walked, "relations": relations, "entities": entities, "base": base}


def _has(relations: set[Relation], source: str, type_: str, target: str) -> bool:
    return Relation(source, type_, target) in relations


def test_walk_reaches_fifty_files_three_levels_deep(examples: dict) -> None:
    walked = examples["walked"][:-1]
    assert len(walked) == 50
    assert all(not res.unreadable and not res.problems for _, res in walked)
    targets = {loc.target for loc, _ in walked}
    assert str(examples["base"] / "acme/team-a-group.yaml") in targets


def test_api_relations(examples: dict) -> None:
    rel = examples["relations"]
    for api in ("petstore", "streetlights", "hello-world"):
        assert _has(rel, "component:default/petstore", "providesApi", f"api:default/{api}")
        assert _has(rel, f"api:default/{api}", "apiProvidedBy", "component:default/petstore")
    assert _has(rel, "component:default/wayback-search", "consumesApi", "api:default/wayback-archive")
    assert _has(rel, "api:default/wayback-archive", "apiConsumedBy", "component:default/wayback-search")
    assert _has(rel, "component:default/wayback-search", "providesApi", "api:default/wayback-search")


def test_part_of_relations(examples: dict) -> None:
    rel = examples["relations"]
    for part in ("wayback-archive-ingestion", "wayback-archive-storage"):
        assert _has(rel, f"component:default/{part}", "partOf", "component:default/wayback-archive")
        assert _has(rel, "component:default/wayback-archive", "hasPart", f"component:default/{part}")
    assert _has(rel, "system:default/artist-engagement-portal", "partOf", "domain:default/artists")
    assert _has(rel, "system:default/audio-playback", "partOf", "domain:default/playback")
    assert _has(rel, "system:default/podcast", "partOf", "domain:default/playback")
    assert _has(rel, "domain:default/playback", "hasPart", "system:default/podcast")


def test_ownership_defaults_to_group(examples: dict) -> None:
    rel = examples["relations"]
    for ref in ("component:default/artist-lookup", "component:default/www-artist", "component:default/wayback-search",
                "resource:default/artists-db", "airesource:default/frontend-design", "airesource:default/code-review-plugin"):
        assert _has(rel, ref, "ownedBy", "group:default/team-a"), ref
        assert _has(rel, "group:default/team-a", "ownerOf", ref)
    assert _has(rel, "component:default/playback-order", "ownedBy", "group:default/guest")  # dangling, still emitted
    assert _has(rel, "component:default/searcher", "ownedBy", "user:default/guest")
    assert _has(rel, "domain:default/playback", "ownedBy", "user:default/frank.tiernan")
    assert _has(rel, "domain:default/audio", "ownedBy", "group:default/acme-corp")
    assert _has(rel, "component:alternative/different-namespace", "ownedBy", "group:default/team-a")


def test_group_tree_and_membership(examples: dict) -> None:
    rel = examples["relations"]
    tree = [("acme-corp", "infrastructure"), ("infrastructure", "backstage"), ("backstage", "team-a"),
            ("backstage", "team-b"), ("infrastructure", "boxoffice"), ("boxoffice", "team-c"),
            ("boxoffice", "team-d"), ("boxoffice", "team-e")]
    for parent, child in tree:
        assert _has(rel, f"group:default/{parent}", "parentOf", f"group:default/{child}")
        assert _has(rel, f"group:default/{child}", "childOf", f"group:default/{parent}")
    users = [e for e in examples["entities"].values() if e.entity["kind"] == "User"]
    assert len(users) == 17  # the ACME files hold 17 User documents (5 + 5 + 5 + 2)
    for user in users:
        for group in user.entity["spec"].get("memberOf", []):
            target = group if ":" in group else f"group:{user.entity['metadata']['namespace']}/{group}"
            assert _has(rel, user.ref, "memberOf", target.lower())
            assert _has(rel, target.lower(), "hasMember", user.ref)
    assert _has(rel, "user:development/guest", "memberOf", "group:default/team-a")


def test_ai_resource_relations(examples: dict) -> None:
    rel = examples["relations"]
    assert _has(rel, "airesource:default/code-review-plugin", "hasSkill", "airesource:default/security-review")
    assert _has(rel, "airesource:default/security-review", "skillOf", "airesource:default/code-review-plugin")


def test_annotations_and_namespace_defaults(examples: dict) -> None:
    entity = examples["entities"]["component:default/petstore"]
    meta = entity.entity["metadata"]
    assert meta["namespace"] == "default"
    assert meta["annotations"]["backstage.io/managed-by-location"] == f"file:{entity.location.target}"
    assert meta["annotations"]["backstage.io/managed-by-origin-location"] == \
        f"file:{examples['base'] / 'all.yaml'}"
    assert "backstage.io/view-url" not in meta["annotations"]


def _location_file(tmp_path: Path, name: str, targets: list[str], **spec) -> LocationSpec:
    lines = "".join(f"    - {t}\n" for t in targets)
    extra = "".join(f"  {k}: {v}\n" for k, v in spec.items())
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: loc\nspec:\n{extra}  targets:\n{lines}")
    return LocationSpec("file", str(path))


def test_child_targets_that_loop_or_escape_are_problems(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    loc = _location_file(root, "catalog-info.yaml",
                         ["./catalog-info.yaml", "../outside.yaml", "./sub/ok.yaml", "sub/../sub/ok.yaml"])
    result = process_location(loc, origin=loc, policy=DefaultReadPolicy())
    assert result.locations == [LocationSpec("file", str(root / "sub/ok.yaml"))]
    assert [p.field for p in result.problems] == ["spec.targets.0", "spec.targets.1"]
    assert "refers to this same file" in result.problems[0].message
    assert "outside the allowed tree" in result.problems[1].message
    assert [e.ref for e in result.entities] == ["location:default/loc"]


def test_file_walk_ends_on_cycles(tmp_path: Path) -> None:
    a = _location_file(tmp_path, "a.yaml", ["./b.yaml"])
    _location_file(tmp_path, "b.yaml", ["./a.yaml"])
    walked = process_tree(a, policy=DefaultReadPolicy())
    assert [loc.target for loc, _ in walked] == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]


def test_url_location_children_and_scm_annotations(fake_github, open_policy) -> None:
    base = "https://github.com/acme/repo/blob/main/catalog"
    github = fake_github({
        "/acme/repo/blob/main/catalog/all.yaml": b"apiVersion: backstage.io/v1alpha1\nkind: Location\n"
        b"metadata:\n  name: all\nspec:\n  targets:\n    - ./apis/a.yaml\n    - /root.yaml\n"
        b"    - https://evil.example/x.yaml\n  type: url\n",
    })
    loc = LocationSpec("url", f"{base}/all.yaml")
    result = process_location(loc, origin=loc, policy=open_policy, http=github.client())
    assert result.locations == [LocationSpec("url", f"{base}/apis/a.yaml"),
                                LocationSpec("url", "https://github.com/acme/repo/blob/main/root.yaml")]
    assert "evil.example" in result.problems[0].message
    annotations = result.entities[0].entity["metadata"]["annotations"]
    assert annotations["backstage.io/view-url"] == f"{base}/all.yaml"
    assert annotations["backstage.io/edit-url"] == "https://github.com/acme/repo/edit/main/catalog/all.yaml"
    assert annotations["backstage.io/source-location"] == "url:https://github.com/acme/repo/tree/main/catalog/"


def test_one_bad_document_does_not_block_its_siblings(tmp_path: Path) -> None:
    (tmp_path / "mixed.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: a\nspec:\n  type: team\n  children: []\n"
        "---\n- just a list\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: Bad Name\nspec:\n  type: team\n  children: []\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: c\nspec:\n  type: team\n  children: []\n"
    )
    loc = LocationSpec("file", str(tmp_path / "mixed.yaml"))
    result = process_location(loc, origin=loc, policy=DefaultReadPolicy())
    assert [e.ref for e in result.entities] == ["group:default/a", "group:default/c"]
    assert [(p.line, p.entity_ref) for p in result.problems] == [(9, None), (14, "group:default/bad name")]


def test_ten_thousand_entities_are_processed_quickly(tmp_path: Path) -> None:
    generator = Path(__file__).resolve().parents[4] / "shared/bench/gen_entities.py"
    if not generator.exists():
        pytest.skip("benchmark generator not available")
    subprocess.run([sys.executable, str(generator), "10000", str(tmp_path / "gen")], check=True, capture_output=True)
    root = LocationSpec("file", str(tmp_path / "gen/catalog-info.yaml"))
    started = time.perf_counter()
    walked = process_tree(root, policy=DefaultReadPolicy())
    elapsed = time.perf_counter() - started
    assert sum(len(r.entities) for _, r in walked) == 10011
    assert not any(r.problems for _, r in walked)
    assert elapsed < 4.0  # ~1.1 s on one core of the reference machine; generous for shared CI

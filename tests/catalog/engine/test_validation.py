"""Validation against Backstage's rules and schemas, with messages naming file, line, ref, field and fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from greenroom.catalog.engine import DefaultReadPolicy, process_location, read_documents, validate_entity
from greenroom.catalog.engine.check import check_entity
from greenroom.catalog.engine.validation import fast_check, jsonschema_validator, schema_candidates
from greenroom.catalog.model import LocationSpec


def _corpus_entities(corpus: Path) -> list[tuple[Path, dict]]:
    out = []
    for path in sorted((corpus / "catalog").rglob("*.yaml")):
        for doc in read_documents(LocationSpec("file", str(path)), DefaultReadPolicy(), root=str(corpus)):
            if isinstance(doc.data, dict) and "kind" in doc.data:
                out.append((path, doc.data))
    return out


def _component(**spec) -> dict:
    base = {"type": "service", "lifecycle": "production", "owner": "team-a"}
    return {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "pay"}, "spec": {**base, **spec}}


def test_109_of_116_corpus_entities_validate_as_they_are(corpus: Path) -> None:
    entities = _corpus_entities(corpus)
    assert len(entities) == 116
    invalid = {(p.name, e["metadata"]["name"]) for p, e in entities if check_entity(e)}
    assert len(entities) - len(invalid) == 109
    placeholders = {("petstore-webhook-api.yaml", "petstore-webhook"), ("spotify-api.yaml", "spotify"),
                    ("wayback-archive-api.yaml", "wayback-archive"), ("wayback-search-api.yaml", "wayback-search"),
                    ("nexus-repo-manager-3.yaml", "nexus-repo-manager3"), ("petstore.yaml", "petstore")}
    assert invalid == placeholders | {("CouchDB.yaml", "one-platform-couchdb")}


def test_fast_check_agrees_with_jsonschema(corpus: Path) -> None:
    """The compiled check must never accept what jsonschema rejects (and vice versa)."""
    samples = [e for _, e in _corpus_entities(corpus)]
    mutated = []
    for e in samples:
        for mutate in (
            lambda x: x["spec"].pop("owner", None),
            lambda x: x["spec"].__setitem__("owner", ""),
            lambda x: x["spec"].__setitem__("owner", 5),
            lambda x: x["metadata"].__setitem__("tags", [1]),
            lambda x: x["metadata"].__setitem__("labels", {"a": 1}),
            lambda x: x.__setitem__("extra", 1),
            lambda x: x["metadata"].__setitem__("links", [{"title": "no url"}]),
            lambda x: x["spec"].__setitem__("dependsOn", "not-a-list"),
        ):
            m = copy.deepcopy(e)
            if isinstance(m.get("spec"), dict):
                mutate(m)
                mutated.append(m)
    for entity in samples + mutated:
        for sid in schema_candidates(entity):
            check = fast_check(sid)
            assert check is not None
            assert check(entity) == jsonschema_validator(sid).is_valid(entity), (sid, entity)


def test_couchdb_is_rejected_naming_file_and_field_while_siblings_pass(corpus: Path) -> None:
    resources = corpus / "catalog/external/1-Platform__one-platform/catalog/resources"
    results = {}
    for name in ("CouchDB.yaml", "NativeMongoDB.yaml", "NonNativeMongoDB.yaml"):
        loc = LocationSpec("file", str(resources / name))
        results[name] = process_location(loc, origin=loc, policy=DefaultReadPolicy())
    couch = results["CouchDB.yaml"]
    assert couch.entities == [] and not couch.unreadable
    [problem] = couch.problems
    assert problem.field == "dependsOn" and problem.entity_ref == "resource:devex/one-platform-couchdb"
    assert problem.message.startswith("CouchDB.yaml:23: resource:devex/one-platform-couchdb: dependsOn:")
    assert "move it under spec (spec.dependsOn)" in problem.message
    assert all(r.entities and not r.problems for n, r in results.items() if n != "CouchDB.yaml")


def test_missing_owner_message_has_file_line_ref_field_and_fix(tmp_path: Path) -> None:
    (tmp_path / "pay.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: pay\n"
        "spec:\n  type: service\n  lifecycle: production\n"
    )
    loc = LocationSpec("file", str(tmp_path / "pay.yaml"))
    [problem] = process_location(loc, origin=loc, policy=DefaultReadPolicy()).problems
    assert problem.message == "pay.yaml:5: component:default/pay: spec.owner: required; " \
        "add group:default/<team> (or user:default/<person>)"
    assert (problem.file, problem.line, problem.field) == (str(tmp_path / "pay.yaml"), 5, "spec.owner")


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda e: e["metadata"].__setitem__("name", "Pay Service!"), "metadata.name", "rename it, e.g. Pay-Service"),
        (lambda e: e["metadata"].__setitem__("name", "x" * 64), "metadata.name", "at most 63 characters"),
        (lambda e: e["metadata"].__setitem__("namespace", "My_NS"), "metadata.namespace", "use e.g. my-ns"),
        (lambda e: e["metadata"].__setitem__("labels", {"bad key!": "v"}), "metadata.labels.bad key!", "prefix"),
        (lambda e: e["metadata"].__setitem__("labels", {"a": "not ok"}), "metadata.labels.a", "not ok"),
        (lambda e: e["metadata"].__setitem__("annotations", {"a/b/c": "v"}), "metadata.annotations.a/b/c", "key"),
        (lambda e: e["metadata"].__setitem__("tags", ["Java"]), "metadata.tags.0", "use e.g. java"),
        (lambda e: e["metadata"].__setitem__("links", [{"url": "nope"}]), "metadata.links.0.url", "valid url"),
        (lambda e: e.__setitem__("apiVersion", "backstage.io/v2"), "apiVersion", "backstage.io/v1alpha1 or"),
        (lambda e: e["spec"].__setitem__("providesApis", "one"), "spec.providesApis", "must be an array"),
    ],
)
def test_field_rules(mutate, field, words) -> None:
    entity = _component()
    mutate(entity)
    problems = validate_entity(entity)
    assert problems, entity
    assert problems[0].field == field and words in problems[0].message, problems[0].message


def test_unknown_kind_and_case_mistakes() -> None:
    entity = _component()
    entity["kind"] = "Service"
    [problem] = validate_entity(entity)
    assert "kind: unknown kind Service; allowed: AiResource, API, Component" in problem.message
    entity["kind"] = "component"
    assert "did you mean Component?" in validate_entity(entity)[0].message
    assert validate_entity(_component(), allowed_kinds={"api", "component"}) == []
    [problem] = validate_entity(_component(), allowed_kinds={"Group"})
    assert "kind Component is not allowed here; allowed: Group" in problem.message


def test_templates_v1beta3_validate_and_v1beta2_are_refused(corpus: Path) -> None:
    templates = corpus / "templates"
    v3 = legacy = 0
    for path in sorted(templates.rglob("*.yaml")):
        parts = path.relative_to(templates).parts[1:-1]
        if any(p in ("skeleton", "skeletons", "content", "template") or "{{" in p for p in parts):
            continue  # files to be rendered by the scaffolder, not catalog data
        docs = read_documents(LocationSpec("file", str(path)), DefaultReadPolicy(), root=str(corpus))
        for doc in docs:
            if not isinstance(doc.data, dict) or doc.data.get("kind") != "Template":
                continue
            problems = validate_entity(doc.data)
            if doc.data["apiVersion"] == "scaffolder.backstage.io/v1beta3":
                v3 += 1
                assert problems == [], (path, problems[0].message)
            else:
                legacy += doc.data["apiVersion"] == "backstage.io/v1beta2"
                assert f"apiVersion: {doc.data['apiVersion']} templates are no longer supported; " \
                    "migrate the template to scaffolder.backstage.io/v1beta3" in problems[0].message
    assert v3 == 27 and legacy == 2


def test_placeholders_stand_in_for_text_when_validating_alone() -> None:
    api = {"apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": {"name": "a"},
           "spec": {"type": "openapi", "lifecycle": "production", "owner": "team-a",
                    "definition": {"$text": "./openapi.yaml"}}}
    assert validate_entity(api) == []
    assert check_entity(api)  # as data, an unresolved placeholder is not a string


def test_dependson_needs_a_kind() -> None:
    [problem] = validate_entity(_component(dependsOn=["artists-db"]))
    assert problem.field == "spec.dependsOn.0"
    assert 'Entity reference "artists-db" had missing or empty kind' in problem.message

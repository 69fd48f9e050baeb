"""The demo organisation (src/greenroom/demo) is valid, coherent and builds.

What a visitor of ``greenroom serve --demo`` would notice if these failed: entities rejected by
the catalog, owners or systems pointing nowhere, docs that do not build, templates that produce
a broken service. The deliberate flaws are asserted to be exactly the documented ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support import DEMO, KIND_SCHEMA_IDS, SCHEMA_ROOT, mkdocs_problems, schema_errors

CATALOG = DEMO / "catalog"

# (kind the field is on or None for any, field, default target kind or None when a kind is required)
REF_FIELDS: list[tuple[str | None, str, str | None]] = [
    (None, "owner", "group"),
    (None, "system", "system"),
    ("System", "domain", "domain"),
    ("User", "memberOf", "group"),
    ("Group", "parent", "group"),
    ("Group", "children", "group"),
    ("Group", "members", "user"),
    (None, "providesApis", "api"),
    (None, "consumesApis", "api"),
    (None, "dependsOn", None),
    (None, "subcomponentOf", "component"),
]

EXPECTED_DANGLING = {("component:default/rate-calculator", "spec.owner", "group:default/pricing-squad")}
EXPECTED_DEPRECATED_DEPENDENCIES = {
    ("component:default/invoice-generator", "component:default/manifest-ftp-bridge")
}


def _load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.load_all(fh, Loader=yaml.CSafeLoader) if d is not None]


def _walk(start: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Follow Location targets from ``start`` like the catalog does (relative to each file)."""
    seen: set[Path] = set()
    queue = [start.resolve()]
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        for doc in _load(path):
            yield path, doc
            if doc.get("kind") == "Location":
                for target in doc["spec"].get("targets", []) + [t for t in [doc["spec"].get("target")] if t]:
                    resolved = (path.parent / target).resolve()
                    assert resolved.is_relative_to(DEMO.resolve()), f"{path}: target {target} leaves the demo"
                    assert resolved.is_file(), f"{path}: target {target} does not exist"
                    queue.append(resolved)


def _ref(entity: dict[str, Any]) -> str:
    meta = entity["metadata"]
    return f"{entity['kind'].lower()}:{meta.get('namespace', 'default')}/{meta['name']}"


def _parse_ref(text: str, default_kind: str | None, namespace: str) -> str:
    kind, sep, rest = text.partition(":")
    if not sep:
        kind, rest = "", text
    kind = kind or (default_kind or "")
    assert kind, f"{text!r}: this field needs a kind, e.g. component:{text}"
    ns, sep, name = rest.partition("/")
    if not sep:
        ns, name = namespace, rest
    return f"{kind.lower()}:{ns}/{name}"


def _resolve_placeholders(path: Path, entity: dict[str, Any]) -> dict[str, Any]:
    spec = entity.get("spec", {})
    definition = spec.get("definition")
    if isinstance(definition, dict):
        assert set(definition) == {"$text"}, f"{path}: only $text placeholders are used in the demo"
        target = (path.parent / definition["$text"]).resolve()
        assert target.is_relative_to(CATALOG.resolve()) and target.is_file(), f"{path}: {definition}"
        entity = json.loads(json.dumps(entity))
        entity["spec"]["definition"] = target.read_text(encoding="utf-8")
    return entity


@pytest.fixture(scope="module")
def entities() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, _resolve_placeholders(p, d)) for p, d in _walk(CATALOG / "all.yaml")]


@pytest.fixture(scope="module")
def by_ref(entities: list[tuple[Path, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    refs: dict[str, dict[str, Any]] = {}
    for path, entity in entities:
        ref = _ref(entity)
        assert ref not in refs, f"{path}: {ref} is defined twice"
        refs[ref] = entity
    return refs


def test_every_yaml_file_loads_and_every_entity_file_is_reachable(
    entities: list[tuple[Path, dict[str, Any]]],
) -> None:
    reached = {p for p, _ in entities}
    for path in sorted([*DEMO.rglob("*.yaml"), *DEMO.rglob("*.yml")]):
        if "skeleton" in path.parts:
            continue  # skeleton files are rendered by the scaffolder first
        docs = _load(path)
        assert docs, f"{path} is empty"
        if path.name.startswith("mkdocs") or ".openapi." in path.name or ".asyncapi." in path.name:
            continue
        if path == DEMO / "catalog-info.yaml":
            assert docs[0]["spec"]["targets"] == ["./catalog/all.yaml"]  # the root serve --demo registers
            continue
        assert path.resolve() in reached, f"{path} is not reachable from catalog/all.yaml"


@pytest.mark.skipif(SCHEMA_ROOT is None, reason="no catalog JSON schemas on this machine")
def test_every_entity_validates_against_the_backstage_schemas(
    entities: list[tuple[Path, dict[str, Any]]],
) -> None:
    for path, entity in entities:
        errors = schema_errors(entity)
        assert not errors, f"{path}: {_ref(entity)}: " + "; ".join(errors)
        expected_api_version = "scaffolder.backstage.io/v1beta3" if entity["kind"] == "Template" else (
            "backstage.io/v1alpha1"
        )
        assert entity["apiVersion"] == expected_api_version, f"{path}: {_ref(entity)}"


def test_size_and_kinds(entities: list[tuple[Path, dict[str, Any]]]) -> None:
    kinds = [e["kind"] for _, e in entities]
    assert len(kinds) >= 60
    assert set(kinds) == set(KIND_SCHEMA_IDS)
    assert kinds.count("User") >= 20 and kinds.count("Component") >= 20 and kinds.count("API") >= 8
    assert 3 <= kinds.count("Domain") <= 4 and 6 <= kinds.count("System") <= 8
    assert kinds.count("Resource") >= 6
    components = [e for _, e in entities if e["kind"] == "Component"]
    assert {c["spec"]["type"] for c in components} >= {"service", "website", "library"}
    assert {c["spec"]["lifecycle"] for c in components} == {"production", "experimental", "deprecated"}
    api_types = {e["spec"]["type"] for _, e in entities if e["kind"] == "API"}
    assert api_types == {"openapi", "asyncapi", "graphql", "grpc"}
    resource_types = {e["spec"]["type"] for _, e in entities if e["kind"] == "Resource"}
    assert resource_types >= {"database", "s3-bucket", "queue", "cache"}


def test_api_definitions_are_real_documents(entities: list[tuple[Path, dict[str, Any]]]) -> None:
    raw = {d["metadata"]["name"]: d for d in _load(CATALOG / "apis" / "apis.yaml")}
    assert sum(isinstance(d["spec"]["definition"], dict) for d in raw.values()) >= 2
    for path, api in entities:
        if api["kind"] != "API":
            continue
        text, kind = api["spec"]["definition"], api["spec"]["type"]
        if kind in ("openapi", "asyncapi"):
            doc = yaml.load(text, Loader=yaml.CSafeLoader)
            assert str(doc.get(kind, "")).startswith("3." if kind == "openapi" else "2."), api["metadata"]["name"]
            assert doc["info"]["title"] and (doc.get("paths") or doc.get("channels"))
        elif kind == "grpc":
            assert 'syntax = "proto3";' in text and "service " in text
        else:
            assert "type Query" in text


def test_refs_resolve_except_the_deliberate_dangling_owner(
    entities: list[tuple[Path, dict[str, Any]]], by_ref: dict[str, dict[str, Any]]
) -> None:
    dangling = set()
    for path, entity in entities:
        spec, namespace = entity.get("spec", {}), entity["metadata"].get("namespace", "default")
        for on_kind, field, default_kind in REF_FIELDS:
            if entity["kind"] == "Location" or field not in spec or on_kind not in (None, entity["kind"]):
                continue
            values = spec[field] if isinstance(spec[field], list) else [spec[field]]
            for value in values:
                target = _parse_ref(value, default_kind, namespace)
                if target not in by_ref:
                    dangling.add((_ref(entity), f"spec.{field}", target))
    assert dangling == EXPECTED_DANGLING


def test_only_the_deliberate_deprecated_dependency(entities: list[tuple[Path, dict[str, Any]]],
                                                  by_ref: dict[str, dict[str, Any]]) -> None:
    found = set()
    for _, entity in entities:
        for value in entity.get("spec", {}).get("dependsOn", []) if entity["kind"] != "Location" else []:
            target = by_ref.get(_parse_ref(value, None, "default"))
            if target and target["kind"] == "Component" and target["spec"]["lifecycle"] == "deprecated":
                found.add((_ref(entity), _ref(target)))
    assert found == EXPECTED_DEPRECATED_DEPENDENCIES


def test_org_tree_is_consistent_and_people_have_profiles(by_ref: dict[str, dict[str, Any]]) -> None:
    groups = {r: e for r, e in by_ref.items() if e["kind"] == "Group"}
    level = {"organization": 0, "department": 1, "team": 2}
    roots = [r for r, g in groups.items() if "parent" not in g["spec"]]
    assert [groups[r]["spec"]["type"] for r in roots] == ["organization"]
    for ref, group in groups.items():
        spec = group["spec"]
        assert spec["profile"]["displayName"] and spec["profile"]["email"], ref
        for child in spec["children"]:
            child_group = groups[_parse_ref(child, "group", "default")]
            assert _parse_ref(child_group["spec"]["parent"], "group", "default") == ref
            assert level[child_group["spec"]["type"]] == level[spec["type"]] + 1
    users = {r: e for r, e in by_ref.items() if e["kind"] == "User"}
    for ref, user in users.items():
        profile = user["spec"]["profile"]
        assert profile["displayName"] and profile["email"].endswith(".example"), ref
        assert "picture" not in profile, f"{ref}: no external avatar URLs in the demo"
        assert user["spec"]["memberOf"], ref


def test_guest_teams_own_real_things(by_ref: dict[str, dict[str, Any]]) -> None:
    guest = by_ref["user:default/guest"]
    teams = {_parse_ref(g, "group", "default") for g in guest["spec"]["memberOf"]}
    assert 1 <= len(teams) <= 2 and all(by_ref[t]["spec"]["type"] == "team" for t in teams)
    owned = {r for r, e in by_ref.items()
             if isinstance(e.get("spec", {}).get("owner"), str)
             and _parse_ref(e["spec"]["owner"], "group", "default") in teams}
    assert sum(r.startswith("component:") for r in owned) >= 3
    assert any(r.startswith("template:") for r in owned)


def _docs_projects(entities: list[tuple[Path, dict[str, Any]]]) -> list[tuple[str, Path]]:
    return [(e["kind"], p.parent) for p, e in entities
            if e["metadata"].get("annotations", {}).get("backstage.io/techdocs-ref") == "dir:."]


def _mkdocs_build(config: Path, out: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(out)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"{config}: mkdocs build failed:\n{mkdocs_problems(result.stderr)}"


def test_docs_projects_build_with_mkdocs(entities: list[tuple[Path, dict[str, Any]]], tmp_path: Path) -> None:
    projects = _docs_projects(entities)
    assert [k for k, _ in projects].count("Component") >= 3 and ("System" in [k for k, _ in projects])
    for _, folder in projects:
        config = yaml.load((folder / "mkdocs.yml").read_text(), Loader=yaml.CSafeLoader)
        assert config["plugins"] == ["techdocs-core"] and config["site_name"], folder
        pages = sorted((folder / "docs").glob("*.md"))
        assert len(pages) >= 3 and (folder / "docs" / "index.md") in pages, folder
        text = "\n".join(p.read_text() for p in pages)
        assert "!!! note" in text and "```" in text and "|---" in text and "](" in text, folder
        assert "plantuml" not in text.lower(), f"{folder}: PlantUML needs Java; keep it out of the demo"
        svgs = list((folder / "docs" / "img").glob("*.svg"))
        assert svgs and all("<svg" in s.read_text() and "http://" not in s.read_text().replace(
            "http://www.w3.org/2000/svg", "") for s in svgs), folder
        out = tmp_path / folder.name
        _mkdocs_build(folder / "mkdocs.yml", out)
        assert (out / "index.html").is_file()
        assert (out / "img" / svgs[0].name).is_file()
        for page in pages:
            if page.name != "index.md":
                assert (out / page.stem / "index.html").is_file(), page

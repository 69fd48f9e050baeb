"""The demo's software templates are well formed and their skeletons produce working projects.

Skeletons are rendered here with a deliberately tiny, strict renderer that only understands
``${{ values.<key> }}`` and ``${{ values.<key> | dump }}``, the only forms the demo skeletons
use (see src/greenroom/demo/README.md). Anything else in a skeleton fails the test, so the demo
stays renderable by any Backstage-compatible engine. The scaffolder's own engine is tested by
its context.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support import DEMO, SCHEMA_ROOT, mkdocs_problems, schema_errors

TEMPLATES = sorted((DEMO / "templates").glob("*/template.yaml"))
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
SIMPLE = re.compile(r"^\s*values\.([a-zA-Z_]+)\s*(\|\s*dump\s*)?$")

VALUES = {
    "name": "parcel-weigher",
    "module": "parcel_weigher",
    "description": 'Weighs parcels at the dock and flags "oversize" ones.',
    "owner": "group:default/dock-ops",
    "system": "system:default/warehouse-ops",
}


def _template(path: Path) -> dict[str, Any]:
    [doc] = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
    assert isinstance(doc, dict), f"{path}: not a mapping"
    return doc


def _render(text: str, values: dict[str, str], where: str) -> str:
    def one(match: re.Match[str]) -> str:
        simple = SIMPLE.match(match.group(1))
        assert simple, f"{where}: unsupported expression {match.group(0)!r}"
        value = values[simple.group(1)]
        return json.dumps(value) if simple.group(2) else value

    assert "{%" not in text and "{#" not in text, f"{where}: block or comment tags are not used in the demo"
    return EXPRESSION.sub(one, text)


def _render_skeleton(skeleton: Path, out: Path, values: dict[str, str]) -> list[Path]:
    written = []
    for source in sorted(p for p in skeleton.rglob("*") if p.is_file()):
        relative = _render(source.relative_to(skeleton).as_posix(), values, str(source))
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_render(source.read_text(encoding="utf-8"), values, str(source)), encoding="utf-8")
        written.append(Path(relative))
    return written


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.parent.name for p in TEMPLATES])
def test_template_form_steps_and_outputs(path: Path) -> None:
    template = _template(path)
    spec = template["spec"]
    properties: dict[str, Any] = {}
    for step in spec["parameters"]:
        properties.update(step["properties"])
    assert properties["name"]["ui:field"] == "EntityNamePicker"
    assert properties["owner"]["ui:field"] == "OwnerPicker"
    assert properties["owner"]["ui:options"]["allowedKinds"] == ["Group"]
    assert properties["system"]["ui:field"] == "EntityPicker"
    assert properties["system"]["ui:options"]["catalogFilter"]["kind"] == "System"
    assert properties["repoName"]["type"] == "string"
    assert {"name", "description", "owner", "system"} <= set(spec["parameters"][0]["required"])

    fetch, publish, register = spec["steps"]
    assert (fetch["action"], publish["action"], register["action"]) == (
        "fetch:template", "publish:greenroom", "catalog:register")
    assert fetch["input"]["url"] == "./skeleton" and (path.parent / "skeleton").is_dir()
    assert publish["id"] == "publish" and register["id"] == "register"
    assert set(publish["input"]) == {"repoUrl", "description", "defaultBranch"}
    assert publish["input"]["repoUrl"].startswith("greenroom?owner=")
    assert publish["input"]["defaultBranch"] == "main"
    assert register["input"] == {
        "repoContentsUrl": "${{ steps['publish'].output.repoContentsUrl }}",
        "catalogInfoPath": "/catalog-info.yaml",
    }
    links = {link["title"]: link for link in spec["output"]["links"]}
    assert links["Repository"]["url"] == "${{ steps['publish'].output.remoteUrl }}"
    assert links["Open in catalog"]["entityRef"] == "${{ steps['register'].output.entityRef }}"


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.parent.name for p in TEMPLATES])
def test_skeleton_uses_only_values_the_template_passes(path: Path) -> None:
    passed = set(_template(path)["spec"]["steps"][0]["input"]["values"])
    used = set()
    for source in (path.parent / "skeleton").rglob("*"):
        texts = [source.relative_to(path.parent).as_posix()]
        if source.is_file():
            texts.append(source.read_text(encoding="utf-8"))
        for text in texts:
            for match in EXPRESSION.finditer(text):
                simple = SIMPLE.match(match.group(1))
                assert simple, f"{source}: unsupported expression {match.group(0)!r}"
                used.add(simple.group(1))
    assert used and used <= passed, f"{path}: skeleton uses {sorted(used - passed)} not passed by fetch:template"


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.parent.name for p in TEMPLATES])
def test_rendered_skeleton_is_a_registrable_documented_component(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    written = _render_skeleton(path.parent / "skeleton", out, VALUES)
    assert Path("catalog-info.yaml") in written and Path("mkdocs.yml") in written
    for relative in written:
        if relative.suffix in (".yaml", ".yml"):
            yaml.load((out / relative).read_text(), Loader=yaml.CSafeLoader)  # rendered YAML is YAML
    entity = yaml.load((out / "catalog-info.yaml").read_text(), Loader=yaml.CSafeLoader)
    if SCHEMA_ROOT is not None:
        assert schema_errors(entity) == []
    assert entity["metadata"]["name"] == VALUES["name"]
    assert entity["metadata"]["description"] == VALUES["description"]  # quotes survive via | dump
    assert entity["spec"]["owner"] == VALUES["owner"] and entity["spec"]["system"] == VALUES["system"]
    assert entity["metadata"]["annotations"]["backstage.io/techdocs-ref"] == "dir:."
    assert entity["spec"]["type"] == _template(path)["spec"]["type"]
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(out / "mkdocs.yml")]
    result = subprocess.run(
        [*command, "-d", str(site)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, mkdocs_problems(result.stderr)
    assert (site / "index.html").is_file()


def test_python_service_skeleton_passes_its_own_tests(tmp_path: Path) -> None:
    skeleton = DEMO / "templates" / "python-service" / "skeleton"
    out = tmp_path / "repo"
    written = _render_skeleton(skeleton, out, VALUES)
    assert Path("src/parcel_weigher/app.py") in written
    assert Path(".github/workflows/ci.yml") in written and Path("README.md") in written
    project = tomllib.loads((out / "pyproject.toml").read_text())["project"]
    assert project["name"] == VALUES["name"] and project["description"] == VALUES["description"]
    env = {**os.environ, "PYTHONPATH": str(out / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=out, env=env, check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout

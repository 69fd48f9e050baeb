"""Every corpus v1beta3 template dry-runs as Backstage does (see notes/scaffolder-backstage-behaviour.md)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.actions import load_actions
from greenroom.scaffolder.engine.dryrun import dry_run
from greenroom.scaffolder.engine.lint import lint_template
from greenroom.scaffolder.engine.runner import TaskFailedError
from greenroom.scaffolder.model import TemplateError

CORPUS = Path("/work/shared/corpus/templates")
RHDH = CORPUS / "redhat-developer__rhdh-software-templates"
TEMPLATES = sorted(
    p for p in CORPUS.rglob("template.yaml")
    if yaml.safe_load(p.read_text()).get("apiVersion") == "scaffolder.backstage.io/v1beta3"
)
ACTIONS = load_actions()
TIMINGS: dict[str, float] = {}

# name -> (expected paths subset, or the failing step id and a phrase of its error)
EXPECTED_FILES: dict[str, list[str]] = {
    "scaffold-bancolombia-java": ["build.gradle", "catalog-info.yaml", ".github/workflows/gradle.yml"],
    "create-react-app-template": ["catalog-info.yaml", "package.json"],
    "docs-template": ["catalog-info.yaml", "mkdocs.yml", "docs/index.md"],
    "docs-template-cookiecutter": [],
    "gitlab-merge-request": ["docs/catalog-info.yaml"],
    "rails-demo": ["catalog-info.yaml"],
    "react-ssr-template": ["catalog-info.yaml", "package.json"],
    "springboot-template": ["pom.xml", "src/main/java/com/example/io.acme.demo/Application.java"],
    "example-nodejs-template": ["catalog-info.yaml", "index.js", "package.json"],
    "create-backend-plugin": ["plugins/my-plugin-backend/package.json", "plugins/my-plugin-backend/src/plugin.ts"],
    "create-frontend-plugin": ["plugins/my-plugin/package.json"],
    "backstage-system-template": ["all.yaml", "systems.yaml", "systems/payments.yaml"],
    "dotnet-frontend-template": ["catalog-info.yaml", "Dockerfile"],
    "argocd-template": ["catalog-info.yaml", "manifests/argocd/app.yaml"],
    "go-backend-template": ["catalog-info.yaml", "Dockerfile", ".github/workflows/ci.yaml"],
    "nodejs-backend-template": ["catalog-info.yaml", "Dockerfile"],
    "quarkus-backend-template": ["catalog-info.yaml", ".github/workflows/ci.yaml"],
    "spring-boot-backend-template": ["catalog-info.yaml", ".github/workflows/ci.yaml"],
    "techdocs-template": ["catalog-info.yaml", "mkdocs.yaml"],
    "python-backend-template": ["catalog-info.yaml", ".gitlab-ci.yml"],
}
EXPECTED_FAILURES: dict[str, tuple[str, str]] = {
    "pull-request": ("fetch-docs", "needs network access"),
    "register-component": ("fetchRepository", "needs network access"),
    "tekton-template": ("fetchRepo", "needs network access"),
    "define-ansible-job-template": ("publish", "additional properties"),
    "launch-ansible-job-template": ("publish", "additional properties"),
    "obc-template": ("manifestsTemplate", "./template"),
    # upstream ships no app-gitops/ folder; the .replaceAll() step before it renders (see below)
    "sdlc-app-template": ("template-gitops", "./app-gitops"),
}
OVERRIDES: dict[str, Any] = {
    "java_package_name": "io.acme.demo", "plugin_id": "my-plugin", "systemName": "payments",
    "targetPath": "docs", "extra_vars": "{}", "application_id": "shop",
    "pluginLocation": "Create a new repository within the specified organization",
}


def form_values(parameters: Any) -> dict[str, Any]:
    """What a user would type: a plausible string per required-looking field, schema defaults kept."""
    pages = parameters if isinstance(parameters, list) else [parameters or {}]
    values: dict[str, Any] = {}
    for page in pages:
        for name, prop in (page.get("properties") or {}).items():
            if name in OVERRIDES:
                values[name] = OVERRIDES[name]
            elif "default" in prop or not isinstance(prop, dict):
                continue
            elif "enum" in prop:
                values[name] = prop["enum"][0]
            elif prop.get("type") == "string":
                if prop.get("ui:field") == "RepoUrlPicker":
                    host = (prop.get("ui:options") or {}).get("allowedHosts", ["github.com"])[0]
                    values[name] = f"{host}?owner=acme&repo=demo"
                elif "owner" in name.lower():
                    values[name] = "group:default/team-a"
                else:
                    values[name] = f"my-{name.lower()}"
            elif prop.get("type") in ("number", "integer"):
                values[name] = 8080
            elif prop.get("type") == "boolean":
                values[name] = False
    return values


def _run(path: Path) -> Any:
    doc = yaml.safe_load(path.read_text())
    root = RHDH if RHDH in path.parents else path.parent
    start = time.perf_counter()
    try:
        return doc, asyncio.run(dry_run(doc, form_values(doc["spec"].get("parameters")), base_dir=path.parent,
                                        repository_root=root, actions=ACTIONS))
    finally:
        TIMINGS[doc["metadata"]["name"]] = time.perf_counter() - start


def test_corpus_has_27_v1beta3_templates() -> None:
    assert len(TEMPLATES) == 27
    names = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in TEMPLATES}
    assert names == set(EXPECTED_FILES) | set(EXPECTED_FAILURES)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.parent.name)
def test_corpus_template_dry_run(path: Path) -> None:
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    if name in EXPECTED_FAILURES:
        step_id, phrase = EXPECTED_FAILURES[name]
        with pytest.raises(TaskFailedError) as info:
            _run(path)
        assert info.value.step_id == step_id
        assert phrase.lower() in info.value.message.lower()
        return
    _doc, result = _run(path)
    paths = {f.path for f in result.directory_contents}
    assert set(EXPECTED_FILES[name]) <= paths, sorted(paths)
    assert not any("${{" in p or "{{" in p for p in paths), "a templated file name was not rendered"
    body = result.as_json()
    assert [s["id"] for s in body["steps"]] and all("base64Content" in f for f in body["directoryContents"])
    assert TIMINGS[name] < 1.0, f"dry-run of {name} took {TIMINGS[name]:.2f}s"


def test_rhdh_skeletons_are_refused_when_only_the_template_folder_is_uploaded() -> None:
    path = RHDH / "templates/github/go-backend/template.yaml"
    doc = yaml.safe_load(path.read_text())
    contents = [{"path": str(p.relative_to(path.parent)),
                 "base64Content": __import__("base64").b64encode(p.read_bytes()).decode()}
                for p in path.parent.rglob("*") if p.is_file()]
    with pytest.raises(TaskFailedError, match="outside its parent"):
        asyncio.run(dry_run(doc, form_values(doc["spec"]["parameters"]), directory_contents=contents))


def test_sdlc_app_renders_replace_all_when_its_missing_folder_exists(tmp_path: Path) -> None:
    import shutil
    src = RHDH / "templates/github/sdlc-app"
    shutil.copytree(src, tmp_path / "sdlc-app")
    (tmp_path / "sdlc-app/app-gitops").mkdir()
    doc = yaml.safe_load(src.joinpath("template.yaml").read_text())
    values = form_values(doc["spec"]["parameters"])
    result = asyncio.run(dry_run(doc, values, base_dir=tmp_path / "sdlc-app"))
    files = {f.path: f.content.decode() for f in result.directory_contents}
    assert "environments: build-dev-qa-prod" in files["systems/shop-system.yaml"]
    assert files["namespaces/shop-namespaces.yaml"].count("name: shop-") == 4


def test_rails_demo_dry_run_skips_publishers_and_fakes_outputs() -> None:
    _doc, result = _run(next(p for p in TEMPLATES if p.parent.name == "rails-demo"))
    messages = [e["body"]["message"] for e in result.log]
    assert "Skipping because fetch:rails does not support dry-run" in messages
    assert "Skipping because publish:github does not support dry-run" in messages
    assert result.output["links"][0]["url"] == "<example>"
    catalog = next(f for f in result.directory_contents if f.path == "catalog-info.yaml").content.decode()
    assert "backstage.io/source-template: template:default/dry-run" in catalog
    assert "github.com/project-slug: acme/demo" in catalog


@pytest.mark.parametrize("path", sorted((CORPUS / "backstage__sample-templates-2021").rglob("template.yaml")))
def test_legacy_templates_are_refused(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    with pytest.raises(TemplateError, match="scaffolder.backstage.io/v1beta3"):
        asyncio.run(dry_run(doc, {}, base_dir=path.parent))
    problems = lint_template(path)
    assert problems and problems[0].line == 1 and "legacy" in problems[0].message


def test_lint_corpus_v1beta3_templates_validate_and_real_defects_are_reported() -> None:
    problems = [p for path in TEMPLATES for p in lint_template(path)]
    assert not [p for p in problems if "additional" in p.message or "required" in p.message]
    text = "\n".join(map(str, problems))
    assert "obc/template.yaml:76: url './template' does not exist" in text
    assert "launch-ansible-job/template.yaml:119: refers to parameters.githubOrg" in text


def test_report_timings() -> None:
    for path in TEMPLATES:
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        if name not in TIMINGS:
            try:
                _run(path)
            except InputError:
                pass
    print("\ndry-run timings (ms): " + ", ".join(f"{k}={v * 1000:.0f}" for k, v in sorted(TIMINGS.items())))
    assert max(TIMINGS.values()) < 1.0

"""Real MkDocs builds of the corpus docs projects and of broken or hostile ones."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from greenroom.techdocs.engine.builder import DocsBuilder
from tests.techdocs.conftest import DOCS, HAS_PLANTUML, write_project


def _site_json(site: Path) -> dict:
    return json.loads((site / "greenroom_site.json").read_text())


@pytest.mark.parametrize("name", list(DOCS))
def test_corpus_projects_build_with_techdocs_core(name: str, builder: DocsBuilder, tmp_path: Path) -> None:
    if name == "documented-component" and not HAS_PLANTUML:
        pytest.skip("documented-component has a PlantUML diagram and `plantuml` is not installed "
                    "(Debian: apt-get install plantuml)")
    site = tmp_path / "site"
    result = builder.build(DOCS[name], site, etag="abc123")
    assert result.ok, result.error + "\n" + result.log
    assert (site / "index.html").is_file()
    meta = json.loads((site / "techdocs_metadata.json").read_text())
    assert meta["site_name"] == result.site_name != ""
    assert meta["etag"] == "abc123"
    assert meta["build_timestamp"] > 1_700_000_000_000
    assert "index.html" in meta["files"] and "techdocs_metadata.json" in meta["files"]
    assert _site_json(site)["nav"], "the site nav is captured for portal pages"
    # The source folder is never written to.
    assert not (DOCS[name] / "site").exists()


@pytest.mark.skipif(not HAS_PLANTUML, reason="needs the `plantuml` command (apt-get install plantuml)")
def test_plantuml_diagram_is_embedded_and_build_is_fast(builder: DocsBuilder, tmp_path: Path) -> None:
    timings = []
    for i in range(3):
        started = time.perf_counter()
        result = builder.build(DOCS["documented-component"], tmp_path / f"site{i}")
        timings.append(time.perf_counter() - started)
        assert result.ok, result.log
    page = (tmp_path / "site0" / "greenroom_pages/extensions/index.html").read_text()
    assert 'src="data:image/svg+xml;base64,' in page
    print(f"documented-component build seconds: {[round(t, 3) for t in timings]}")
    assert sorted(timings)[1] < 3.0


def test_monorepo_includes_are_merged(builder: DocsBuilder, tmp_path: Path) -> None:
    result = builder.build(DOCS["monorepo"], tmp_path / "site")
    assert result.ok, result.log
    pages = _site_json(tmp_path / "site")["pages"]
    # Pages from !include ./v1/mkdocs.yml and *include ./components/*/mkdocs.yml are in the site.
    assert "versions/v1/changelog/index.html" in pages, sorted(pages)
    assert {"component-a/index.html", "component-b/index.html", "component-c/index.html"} <= set(pages)


def test_missing_config_gives_clear_error(builder: DocsBuilder, tmp_path: Path) -> None:
    src = write_project(tmp_path / "p", {"docs/index.md": "# Hi\n"})
    result = builder.build(src, tmp_path / "site")
    assert not result.ok
    assert "no mkdocs.yml or mkdocs.yaml" in (result.error or "")
    assert "mkdocs.yml" in result.log


def test_unknown_plugin_gives_clear_error_with_log(builder: DocsBuilder, tmp_path: Path) -> None:
    src = write_project(tmp_path / "p", {
        "mkdocs.yml": "site_name: x\nplugins:\n  - techdocs-core\n  - no-such-plugin\n",
        "docs/index.md": "# Hi\n"})
    result = builder.build(src, tmp_path / "site")
    assert not result.ok
    assert "no-such-plugin" in (result.error or "")
    assert "no-such-plugin" in result.log
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("files, needle", [
    ({"mkdocs.yml": "site_name: x\nnav:\n  - A: '!include ../outside/mkdocs.yml'\nplugins: [monorepo]\n"},
     "outside the docs folder"),
    ({"mkdocs.yml": "site_name: x\ndocs_dir: ../\n"}, "docs_dir"),
    ({"mkdocs.yml": "site_name: x\nmarkdown_extensions:\n  - x: !!python/object/apply:os.system [id]\n"},
     "unsupported Python YAML tag"),
    ({"mkdocs.yml": "site_name: x\nnav:\n  - A: '*include ../*/mkdocs.yml'\nplugins: [monorepo]\n"},
     "outside the docs folder"),
])
def test_docs_that_reach_outside_are_refused(files: dict[str, str], needle: str, builder: DocsBuilder,
                                              tmp_path: Path) -> None:
    write_project(tmp_path / "outside", {"mkdocs.yml": "site_name: o\ndocs_dir: docs\n",
                                         "docs/secret.md": "# secret\n"})
    src = write_project(tmp_path / "p", {"docs/index.md": "# Hi\n", **files})
    result = builder.build(src, tmp_path / "site")
    assert not result.ok
    assert needle in (result.error or ""), result.error
    assert "mkdocs.yml" in (result.error or "")


def test_symlink_out_of_the_folder_is_refused(builder: DocsBuilder, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("top secret")
    src = write_project(tmp_path / "p", {"mkdocs.yml": "site_name: x\n", "docs/index.md": "# Hi\n"})
    os.symlink(tmp_path / "secret.txt", src / "docs" / "leak.md")
    result = builder.build(src, tmp_path / "site")
    assert not result.ok
    assert "docs/leak.md: symbolic link points outside" in (result.error or "")


def test_hooks_and_env_are_not_honoured(builder: DocsBuilder, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    src = write_project(tmp_path / "p", {
        "hook.py": f"open({str(marker)!r}, 'w').write('x')\n",
        "mkdocs.yml": "site_name: !ENV [GREENROOM_TEST_SECRET, 'Safe name']\nhooks:\n  - hook.py\n",
        "docs/index.md": "# Hi\n"})
    os.environ["GREENROOM_TEST_SECRET"] = "leaked-secret"
    try:
        result = builder.build(src, tmp_path / "site")
    finally:
        del os.environ["GREENROOM_TEST_SECRET"]
    assert result.ok, result.log
    assert not marker.exists()
    assert result.site_name == "Safe name"
    assert any("hooks" in w for w in result.warnings)


def test_broken_internal_links_are_reported(builder: DocsBuilder, tmp_path: Path) -> None:
    src = write_project(tmp_path / "p", {
        "mkdocs.yml": "site_name: x\nnav:\n  - Home: index.md\n",
        "docs/index.md": "# Hi\n\nSee [gone](missing.md) and [ok](other.md).\n",
        "docs/other.md": "# Other\n"})
    result = builder.build(src, tmp_path / "site")
    assert result.ok, result.log
    assert [(b.page, b.link) for b in result.broken_links] == [("index.md", "missing.md")]


def test_build_timeout_is_bounded_and_server_survives(tmp_path: Path) -> None:
    big = "\n".join(f"| {i} | **{i}** | `x{i}` | [l](#a{i}) |" for i in range(60_000))
    src = write_project(tmp_path / "slow", {
        "mkdocs.yml": "site_name: slow\n",
        "docs/index.md": "# Slow\n\n| a | b | c | d |\n|---|---|---|---|\n" + big + "\n"})
    small = write_project(tmp_path / "small", {"mkdocs.yml": "site_name: s\n", "docs/index.md": "# S\n"})
    b = DocsBuilder(timeout_s=1.0)
    try:
        started = time.perf_counter()
        result = b.build(src, tmp_path / "site")
        elapsed = time.perf_counter() - started
        assert not result.ok
        assert "timed out after 1 s" in (result.error or "")
        assert elapsed < 4.0
        assert b.build(small, tmp_path / "site2").ok
    finally:
        b.close()


def test_one_shot_subprocess_mode_builds_too(tmp_path: Path) -> None:
    b = DocsBuilder(timeout_s=60, use_server=False)
    result = b.build(DOCS["create-app"], tmp_path / "site")
    assert result.ok, result.log
    assert (tmp_path / "site/index.html").is_file()

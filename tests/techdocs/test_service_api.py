"""TechDocs through its HTTP API in a real FastAPI app: build, serve, metadata, sync, pages."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from greenroom.core.config import Settings
from greenroom.core.errors import GreenroomError
from greenroom.core.http import error_response
from greenroom.techdocs.api import router
from greenroom.techdocs.engine.builder import DocsBuilder
from greenroom.techdocs.engine.storage import LocalStorage
from greenroom.techdocs.model import TechDocsOptions
from greenroom.techdocs.service import TechDocsService
from tests.techdocs.conftest import DictEntities, component, write_project

DAY = 86400
T0 = 1_767_225_600  # 2026-01-01


def _git(repo: Path, *args: str, when: int | None = None) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{when} +0000"
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository: docs committed, then code changed 93 days later."""
    root = tmp_path / "repo"
    write_project(root, {
        "mkdocs.yml": "site_name: Shop docs\nnav:\n  - Home: index.md\n  - Guide: guide/setup.md\n",
        "docs/index.md": (
            "# Shop\n\nRead the [setup guide](guide/setup.md) and the [gone page](gone.md).\n\n"
            "![logo](img/logo.png)\n\n<script>alert('x')</script>\n\n"
            "<iframe src=\"https://evil.example\"></iframe>\n\n"
            "<img src=\"img/logo.png\" onerror=\"alert(1)\">\n\n:thumbsup:\n\n"
            "!!! note\n    An admonition.\n\n## Install\n\n```python\nprint('hi')\n```\n"),
        "docs/guide/setup.md": "# Setup\n\n## Step one\n\nBack [home](../index.md).\n",
        "catalog-info.yaml": "kind: Component\n",
    })
    (root / "docs/img").mkdir()
    (root / "docs/img/logo.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "docs", when=T0)
    write_project(root, {"src/app.py": "print('v2')\n"})
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "code", when=T0 + 93 * DAY)
    return root


@pytest.fixture
def service(engine: Engine, tmp_path: Path, repo: Path, builder: DocsBuilder) -> Iterator[TechDocsService]:
    entities = DictEntities(
        component("shop", repo / "catalog-info.yaml"),
        component("escape", repo / "catalog-info.yaml", docs_ref="dir:../.."),
        component("remote", repo / "catalog-info.yaml", docs_ref="url:https://not-allowed.example/org/repo"),
    )
    svc = TechDocsService(engine, Settings(), LocalStorage(tmp_path / "sites"), entities,
                          options=TechDocsOptions(sync_min_interval_s=0), builder=builder)
    yield svc


@pytest.fixture
def client(service: TechDocsService) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.portal = SimpleNamespace(services={"techdocs": service})

    @app.exception_handler(GreenroomError)
    async def _err(request: Request, exc: GreenroomError) -> Any:
        return error_response(request, exc.status_code, exc.name, exc.message)

    app.include_router(router, prefix="/api/techdocs")
    with TestClient(app) as c:
        yield c


def _build(client: TestClient, service: TechDocsService, name: str = "shop") -> dict[str, Any]:
    resp = client.post(f"/api/techdocs/builds/default/component/{name}")
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "queued"
    row = service.claim_and_run_next("test-worker")
    assert row is not None
    return client.get(f"/api/techdocs/builds/default/component/{name}").json()


def test_build_serve_and_metadata(client: TestClient, service: TechDocsService) -> None:
    status = _build(client, service)
    assert status["status"] == "succeeded", status["log"]
    assert status["brokenLinks"] == [{"page": "index.md", "link": "gone.md", "kind": "page"}]
    assert status["freshnessLagDays"] == 93
    assert status["freshness"] == "docs last changed 93 days before the code"
    assert len(status["commitSha"]) == 40

    page = client.get("/api/techdocs/static/docs/default/Component/shop/index.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("sandbox")
    assert client.get("/api/techdocs/static/docs/default/component/shop/img/logo.png").content.startswith(b"\x89PNG")
    assert client.get("/api/techdocs/static/docs/default/component/shop/nope.html").status_code == 404
    bad = client.get("/api/techdocs/static/docs/default/component/shop/..%2f..%2f..%2fetc%2fpasswd")
    assert bad.status_code in (400, 404)

    meta = client.get("/api/techdocs/metadata/techdocs/default/component/shop").json()
    assert meta["site_name"] == "Shop docs" and meta["etag"] == status["commitSha"]
    assert "index.html" in meta["files"]
    ent = client.get("/api/techdocs/metadata/entity/default/component/shop").json()
    assert ent["metadata"]["name"] == "shop"
    assert ent["locationMetadata"]["type"] == "dir"

    missing = client.get("/api/techdocs/metadata/techdocs/default/component/unknown")
    assert missing.status_code == 404
    assert missing.json()["error"]["name"] == "NotFoundError"


def test_page_view_is_sanitized_and_rewritten(client: TestClient, service: TechDocsService) -> None:
    _build(client, service)
    page = service.page("component:default/shop", "")
    body = page.body_html
    assert "<script" not in body and "<iframe" not in body and "onerror" not in body
    assert 'href="/docs/default/component/shop/guide/setup/"' in body
    assert 'src="/api/techdocs/static/docs/default/component/shop/img/logo.png"' in body
    assert "cdnjs" not in body and "👍" in body  # emoji from a CDN became the character
    assert 'class="admonition note"' in body
    assert [t["title"] for t in page.toc[0]["children"]] == ["Install"]
    assert [n["title"] for n in page.nav] == ["Home", "Guide"] and page.nav[0]["active"]
    sub = service.page("component:default/shop", "guide/setup")
    assert sub.title == "Guide"  # the nav title wins, as in MkDocs
    assert 'href="/docs/default/component/shop/"' in sub.body_html


def test_sync_streams_backstage_events(client: TestClient, service: TechDocsService) -> None:
    headers = {"accept": "text/event-stream"}
    first = client.get("/api/techdocs/sync/default/component/shop", headers={"accept": "application/json"})
    assert first.json()["queued"] is True
    service.claim_and_run_next("w")
    with client.stream("GET", "/api/techdocs/sync/default/component/shop", headers=headers) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = "".join(resp.iter_text())
    assert text == 'event: finish\ndata: {"updated": false}\n\n'  # up to date: nothing to do


def test_bad_sources_fail_with_clear_errors(client: TestClient, service: TechDocsService) -> None:
    escaped = _build(client, service, "escape")
    assert escaped["status"] == "failed"
    assert "outside the repository" in escaped["error"]
    remote = _build(client, service, "remote")
    assert remote["status"] == "failed"
    assert "not-allowed.example is not allowed" in remote["error"]
    assert client.post("/api/techdocs/builds/default/component/ghost").status_code == 404


def test_worker_builds_and_sync_streams_a_rebuild_after_docs_change(
        client: TestClient, service: TechDocsService, repo: Path) -> None:
    import asyncio
    import threading

    from greenroom.techdocs.worker import run_builds

    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete,
                              args=(run_builds(service, worker_id="bg", idle_s=0.05, stop=stop),))
    thread.start()
    try:
        headers = {"accept": "text/event-stream"}
        with client.stream("GET", "/api/techdocs/sync/default/component/shop", headers=headers) as resp:
            first = "".join(resp.iter_text())
        assert first.endswith('event: finish\ndata: {"updated": true}\n\n'), first
        assert 'event: log\ndata: "Build succeeded"' in first
        # Change the docs and commit: the next sync sees a new commit and rebuilds.
        write_project(repo, {"docs/index.md": "# Shop v2\n"})
        _git(repo, "commit", "-q", "-am", "docs v2", when=T0 + 100 * DAY)
        with client.stream("GET", "/api/techdocs/sync/default/component/shop", headers=headers) as resp:
            second = "".join(resp.iter_text())
        assert second.endswith('event: finish\ndata: {"updated": true}\n\n'), second
        assert "Shop v2" in service.page("component:default/shop").body_html
        assert service.build_status("component:default/shop")["freshness"] == \
            "docs changed with or after the code"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()

"""Templates kept on the built-in git host run like templates read from files: ``./skeleton`` and
``../../../skeletons/x`` inside the repository are fetched, anything past the repository is
refused; templates on another allowed host may fetch single files only.

A real portal (SQLite, workers on), real git pushes over smart HTTP, templates registered by their
raw URL, tasks through ``POST /api/scaffolder/v2/tasks`` and dry-runs through ``/v2/dry-run``.
"""

from __future__ import annotations

import base64
import functools
import http.server
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import TOKEN, Server, free_port, make_settings

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: {name}
  title: Python service from the forge
spec:
  owner: group:default/platform
  type: service
  parameters:
    - required: [name]
      properties:
        name: {{type: string}}
  steps:
    - id: fetch
      action: fetch:template
      input:
        url: {skeleton}
        values:
          name: ${{{{ parameters.name }}}}
    - id: shared
      action: fetch:plain
      input:
        url: ../../../skeletons/shared
        targetPath: ./shared
    - id: licence
      action: fetch:template:file
      input:
        url: ../../../skeletons/LICENSE.njk
        targetPath: LICENSE
        values:
          name: ${{{{ parameters.name }}}}
    - id: publish
      action: publish:greenroom
      input:
        repoUrl: greenroom?owner=acme&repo=${{{{ parameters.name }}}}
        defaultBranch: main
    - id: register
      action: catalog:register
      input:
        repoContentsUrl: ${{{{ steps.publish.output.repoContentsUrl }}}}
        catalogInfoPath: /catalog-info.yaml
  output:
    entityRef: ${{{{ steps.register.output.entityRef }}}}
"""

CATALOG_INFO = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ${{ values.name }}
spec:
  type: service
  lifecycle: experimental
  owner: group:default/platform
"""


def git(cwd: Path, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd.parent), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    proc = subprocess.run(["git", "-c", f"http.extraHeader=Authorization: Bearer {TOKEN}", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.replace(TOKEN, "<token>")
    return proc.stdout


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


class StaticHost:
    """Another host serving template files over plain HTTP (no directory listings used)."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, StaticHost, Path]]:
    tmp = tmp_path_factory.mktemp("sources")
    static = StaticHost(tmp / "static")
    settings = make_settings(tmp, {"client": "sqlite", "connection": str(tmp / "g.db")},
                             backend={"reading": {"allow": [{"host": f"127.0.0.1:{static.port}"}]}})
    server = Server(settings)
    yield server, static, tmp
    server.stop()
    static.stop()


def publish_templates(server: Server, tmp: Path, repo: str, files: dict[str, str]) -> None:
    """Create ``platform/<repo>`` on the forge and push ``files`` to main with real git."""
    r = server.client.post("/api/forge/repositories", json={"org": "platform", "name": repo})
    assert r.status_code == 201, r.text
    work = tmp / f"work-{repo}"
    git(tmp, "clone", "-q", r.json()["cloneUrl"], str(work))
    write(work, files)
    os.chmod(work / "skeletons/shared/bin/run.sh", 0o755)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "templates")
    git(work, "push", "-q", "origin", "HEAD:main")


def register(server: Server, url: str) -> list[dict[str, Any]]:
    r = server.client.post("/api/catalog/locations", json={"type": "url", "target": url})
    assert r.status_code == 201, r.text
    entities: list[dict[str, Any]] = r.json()["entities"]
    return [e for e in entities if e["kind"] == "Template"]


def run_task(server: Server, ref: str, values: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    r = server.client.post("/api/scaffolder/v2/tasks", json={"templateRef": ref, "values": values})
    assert r.status_code == 201, r.text
    task_id = r.json()["id"]
    deadline = time.monotonic() + 30
    while (task := server.client.get(f"/api/scaffolder/v2/tasks/{task_id}").json())["status"] not in (
            "completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
    events = server.client.get(f"/api/scaffolder/v2/tasks/{task_id}/events").json()
    return task, events


def scratch_dirs(server: Server) -> list[str]:
    root = server.settings.home / "scaffolder" / "tasks"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


REPO_FILES = {
    "templates/services/python/template.yaml": TEMPLATE.format(name="forge-python", skeleton="./skeleton"),
    "templates/services/python/skeleton/catalog-info.yaml": CATALOG_INFO,
    "templates/services/python/skeleton/README.md": "# ${{ values.name }}\n",
    "templates/services/escape/template.yaml": TEMPLATE.format(name="forge-escape", skeleton="../../../../outside"),
    "templates/services/sneaky/template.yaml": TEMPLATE.format(name="forge-sneaky", skeleton="../../../..").replace(
        "    - id: fetch\n", "    - id: fetch\n      if: ${{ parameters.name }}\n"),
    "skeletons/shared/ci.yml": "run: ${{ not rendered by fetch:plain }}\n",
    "skeletons/shared/bin/run.sh": "#!/bin/sh\necho run\n",
    "skeletons/LICENSE.njk": "Copyright the ${{ values.name }} authors\n",
}


def test_template_on_the_forge_fetches_its_skeleton_and_shared_folders(
        env: tuple[Server, StaticHost, Path]) -> None:
    server, _, tmp = env
    publish_templates(server, tmp, "golden-paths", REPO_FILES)
    raw = f"{server.url}/git/platform/golden-paths/raw/main/templates/services/python/template.yaml"
    assert [e["metadata"]["name"] for e in register(server, raw)] == ["forge-python"]

    task, events = run_task(server, "template:default/forge-python", {"name": "parcel-api"})
    done = next(e for e in events if e["type"] == "completion")
    assert task["status"] == "completed", done["body"]
    assert done["body"]["output"]["entityRef"] == "component:default/parcel-api"

    checkout = tmp / "checkout"
    git(tmp, "clone", "-q", f"{server.url}/git/acme/parcel-api.git", str(checkout))
    assert (checkout / "README.md").read_text() == "# parcel-api\n"
    assert yaml.safe_load((checkout / "catalog-info.yaml").read_text())["metadata"]["name"] == "parcel-api"
    assert (checkout / "shared/ci.yml").read_text() == "run: ${{ not rendered by fetch:plain }}\n"
    assert os.stat(checkout / "shared/bin/run.sh").st_mode & 0o100, "the executable bit survives the export"
    assert (checkout / "LICENSE").read_text() == "Copyright the parcel-api authors\n"
    entity = server.client.get("/api/catalog/entities/by-name/component/default/parcel-api")
    assert entity.status_code == 200
    assert not [d for d in scratch_dirs(server) if d.endswith(".template")], "the exported copy is removed"

    # the same registered template through the dry-run endpoint: no upload, its repository is used
    template = server.client.get("/api/catalog/entities/by-name/template/default/forge-python").json()
    r = server.client.post("/api/scaffolder/v2/dry-run", json={"template": template, "values": {"name": "dry"}})
    assert r.status_code == 200, r.text
    files = {f["path"]: base64.b64decode(f["base64Content"]).decode() for f in r.json()["directoryContents"]}
    assert files["README.md"] == "# dry\n"
    assert files["LICENSE"] == "Copyright the dry authors\n"
    assert "shared/bin/run.sh" in files
    assert not [d for d in scratch_dirs(server) if d.endswith(".template")]

    # and through the template editor page, loaded from the catalog
    page = server.client.post("/create/edit", data={"text": yaml.safe_dump(template), "values": '{"name": "ed"}',
                                                    "template_ref": "template:default/forge-python"})
    assert page.status_code == 200, page.text
    assert "shared/bin/run.sh" in page.text and "Copyright the ed authors" in page.text


def test_a_skeleton_outside_the_repository_is_refused(env: tuple[Server, StaticHost, Path]) -> None:
    server, _, tmp = env
    publish_templates(server, tmp, "escaping", REPO_FILES)
    register(server, f"{server.url}/git/platform/escaping/raw/main/templates/services/escape/template.yaml")
    task, events = run_task(server, "template:default/forge-escape", {"name": "escapee"})
    assert task["status"] == "failed"
    error = next(e for e in events if e["type"] == "completion")["body"]["error"]["message"]
    assert error.startswith("step 'fetch' (fetch:template): url '../../../../outside' resolves outside the "
                            "template's repository platform/escaping (the template is in "
                            "templates/services/escape/ at main)"), error
    assert server.client.get("/api/forge/repositories/acme/escapee").status_code == 404
    assert not [d for d in scratch_dirs(server) if d.endswith(".template")]

    # a conditional step is judged when it runs: the export still confines it to the repository
    register(server, f"{server.url}/git/platform/escaping/raw/main/templates/services/sneaky/template.yaml")
    task, events = run_task(server, "template:default/forge-sneaky", {"name": "sneak"})
    error = next(e for e in events if e["type"] == "completion")["body"]["error"]["message"]
    assert task["status"] == "failed" and "'../../../..' resolves outside the template's repository" in error

    template = server.client.get("/api/catalog/entities/by-name/template/default/forge-escape").json()
    r = server.client.post("/api/scaffolder/v2/dry-run", json={"template": template, "values": {"name": "x"}})
    assert r.status_code == 400
    assert "resolves outside the template's repository platform/escaping" in r.json()["error"]["message"]


def test_a_template_on_another_host_fetches_files_but_not_folders(env: tuple[Server, StaticHost, Path]) -> None:
    server, static, tmp = env
    base = f"http://127.0.0.1:{static.port}"
    file_template = TEMPLATE.format(name="plain-files", skeleton="./skeleton")
    doc = yaml.safe_load(file_template)
    doc["spec"]["steps"] = [
        {"id": "notes", "action": "fetch:template:file",
         "input": {"url": "./NOTES.md", "targetPath": "NOTES.md", "values": {"name": "${{ parameters.name }}"}}},
        {"id": "licence", "action": "fetch:plain:file", "input": {"url": "../shared/LICENSE", "targetPath": "LICENSE"}},
    ]
    write(tmp / "static", {"templates/plain/template.yaml": yaml.safe_dump(doc) + "---\n"
                           + TEMPLATE.format(name="plain-folders", skeleton="./skeleton"),
                           "templates/plain/NOTES.md": "notes for ${{ values.name }}\n",
                           "templates/shared/LICENSE": "MIT\n"})
    names = [e["metadata"]["name"] for e in register(server, f"{base}/templates/plain/template.yaml")]
    assert sorted(names) == ["plain-files", "plain-folders"]

    template = server.client.get("/api/catalog/entities/by-name/template/default/plain-files").json()
    r = server.client.post("/api/scaffolder/v2/dry-run", json={"template": template, "values": {"name": "web"}})
    assert r.status_code == 200, r.text
    files = {f["path"]: base64.b64decode(f["base64Content"]).decode() for f in r.json()["directoryContents"]}
    assert files == {"NOTES.md": "notes for web\n", "LICENSE": "MIT\n"}

    r = server.client.post("/api/scaffolder/v2/tasks", json={"templateRef": "template:default/plain-folders",
                                                             "values": {"name": "web"}})
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "step 'fetch' (fetch:template) fetches a directory ('./skeleton')" in message
    assert "built-in git host" in message and "file location" in message


def test_leftover_template_copies_are_swept_by_age_only(tmp_path: Path) -> None:
    from greenroom.scaffolder.service.sources import sweep_scratch

    old, fresh, workspace = tmp_path / "a.template", tmp_path / "b.template", tmp_path / "c"
    for d in (old, fresh, workspace):
        (d / "skeleton").mkdir(parents=True)
    hour_ago = time.time() - 3600
    for d in (old, workspace):
        os.utime(d, (hour_ago, hour_ago))
    assert sweep_scratch(tmp_path, keep=set(), older_than=1800) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.template", "c"]
    os.utime(fresh, (hour_ago, hour_ago))
    assert sweep_scratch(tmp_path, keep={fresh}, older_than=1800) == 0, "a copy in use is kept"

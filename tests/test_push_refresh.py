"""A push to the built-in git host re-reads the catalog locations inside that repository at once,
and entities on the portal's own host are read without credentials or network round trips."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN, make_settings

CATALOG_INFO = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: pushed-service
  description: {description}
spec:
  type: service
  lifecycle: production
  owner: team-a
"""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(["git", "-c", f"http.extraHeader=Authorization: Bearer {TOKEN}", *args],
                          cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def wait_for(predicate: Any, timeout: float = 10) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def portal_sqlite(tmp_path: Path, server_factory: Any) -> Any:
    return server_factory(make_settings(tmp_path, {"client": "sqlite", "connection": str(tmp_path / "g.db")}))


def test_push_re_reads_locations_in_the_repository(portal_sqlite: Any, tmp_path: Path) -> None:
    p = portal_sqlite
    r = p.client.post("/api/forge/repositories", json={"org": "team-a", "name": "pushed"})
    assert r.status_code == 201, r.text
    clone_url = r.json()["cloneUrl"]
    work = tmp_path / "work"
    git(tmp_path, "clone", clone_url, str(work))
    (work / "catalog-info.yaml").write_text(CATALOG_INFO.format(description="first version"))
    git(work, "add", "-A")
    git(work, "commit", "-m", "add catalog info")
    git(work, "push", "origin", "HEAD:main")

    target = f"{p.url}/git/team-a/pushed/raw/main/catalog-info.yaml"
    r = p.client.post("/api/catalog/locations", json={"type": "url", "target": target})
    assert r.status_code == 201, r.text
    entity = p.client.get("/api/catalog/entities/by-name/component/default/pushed-service").json()
    assert entity["metadata"]["description"] == "first version"
    assert entity["metadata"]["annotations"]["backstage.io/managed-by-location"] == f"url:{target}"

    (work / "catalog-info.yaml").write_text(CATALOG_INFO.format(description="second version"))
    git(work, "commit", "-am", "describe it better")
    git(work, "push", "origin", "HEAD:main")

    def updated() -> bool:
        e = p.client.get("/api/catalog/entities/by-name/component/default/pushed-service").json()
        return bool(e["metadata"]["description"] == "second version")

    # The refresh interval is 300 s: only the push notification can make this happen in time.
    assert wait_for(updated, 10), "the push did not re-read the location"

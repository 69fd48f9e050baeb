"""FakeGitLab: the few GitLab REST v4 endpoints publish:gitlab calls, plus git smart HTTP.

Implemented (under ``/api/v4``): ``GET /namespaces/{path}``, ``GET /projects/{url-encoded path}``,
``POST /projects`` (400 ``has already been taken`` when the path exists), all requiring the
``PRIVATE-TOKEN`` header. ``/git/{namespace}/{project}.git`` is a real git smart-HTTP endpoint
(``git http-backend`` over bare repositories under ``root``) accepting Basic ``oauth2:<token>``.

Omitted: OAuth ``Authorization: Bearer`` tokens, users-as-namespaces lookup by username, nested
group creation, project settings/branches/variables/topics endpoints, pagination, permissions
(any valid token may do anything) and GitLab's full error bodies.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fakes._server import FakeServer, Reply, basic_credentials, git_http_backend


class FakeGitLab:
    def __init__(self, root: Path, *, token: str = "glpat-fake-token-0123456789",
                 namespaces: tuple[str, ...] = ("platform", "platform/services")) -> None:
        self.root, self.token = root, token
        root.mkdir(parents=True, exist_ok=True)
        ids = itertools.count(100)
        self.namespaces = {path: next(ids) for path in namespaces}
        self.projects: dict[str, dict[str, Any]] = {}
        self._project_ids = itertools.count(1000)
        self.server = FakeServer(self.route)
        self.host, self.url = self.server.host, self.server.url
        self.api_base_url = f"{self.url}/api/v4"

    @property
    def requests(self) -> list[Any]:
        return self.server.requests

    def close(self) -> None:
        self.server.close()

    def git_dir(self, path: str) -> Path:
        return self.root / f"{path}.git"

    def route(self, method: str, target: str, body: Any, headers: dict[str, str]) -> Reply:
        parts = urlsplit(target)
        raw_path = parts.path
        if raw_path.startswith("/git/"):
            if basic_credentials(headers) != ("oauth2", self.token):
                return Reply(401, raw=b"HTTP Basic: Access denied\n",
                             headers={"WWW-Authenticate": 'Basic realm="GitLab"'})
            return git_http_backend(self.root, raw_path[len("/git"):], method, parts.query, headers,
                                    body if isinstance(body, bytes) else b"", "oauth2")
        if headers.get("private-token") != self.token:
            return Reply(401, {"message": "401 Unauthorized"})
        path = raw_path.removeprefix("/api/v4")
        if method == "GET" and path.startswith("/namespaces/"):
            full = unquote(path[len("/namespaces/"):])
            if full not in self.namespaces:
                return Reply(404, {"message": "404 Namespace Not Found"})
            return Reply(200, {"id": self.namespaces[full], "full_path": full, "kind": "group"})
        if method == "GET" and path.startswith("/projects/"):
            project = self.projects.get(unquote(path[len("/projects/"):]))
            return Reply(200, project) if project else Reply(404, {"message": "404 Project Not Found"})
        if method == "POST" and path == "/projects":
            by_id = {v: k for k, v in self.namespaces.items()}
            namespace = by_id.get(body.get("namespace_id"))
            if namespace is None:
                return Reply(404, {"message": "404 Namespace Not Found"})
            full = f"{namespace}/{body.get('path') or body.get('name')}"
            if full in self.projects:
                return Reply(400, {"message": {"name": ["has already been taken"], "path": ["has already been taken"]}})
            git_dir = self.git_dir(full)
            git_dir.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
            project = {"id": next(self._project_ids), "path_with_namespace": full,
                       "visibility": body.get("visibility"), "web_url": f"{self.url}/{full}",
                       "http_url_to_repo": f"{self.url}/git/{full}.git"}
            self.projects[full] = project
            return Reply(201, project)
        return Reply(404, {"message": "404 Not Found"})

"""FakeGitHub: the few GitHub REST endpoints Greenroom's actions call, plus git smart HTTP.

Implemented (under ``/api/v3``, GitHub Enterprise style): ``GET /users/{owner}`` (type
Organization or User), ``POST /orgs/{org}/repos``, ``POST /user/repos`` (422 when the name
exists), ``POST /repos/{owner}/{repo}/actions/workflows/{id}/dispatches`` (204, recorded in
``dispatches``). ``/git/{owner}/{repo}.git`` is a real git smart-HTTP endpoint (``git
http-backend`` over bare repositories under ``root``), accepting Basic auth
``x-access-token:<token>`` only, so a push lands in a real repository tests can read.

Omitted: pagination, rate limits, every other endpoint (branch protection, collaborators, topics,
variables, secrets, workflow runs), GitHub's permission model (any valid token may do anything),
``Accept``/API-version negotiation, and fine-grained error bodies beyond ``{message}``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.fakes._server import FakeServer, Reply, basic_credentials, git_http_backend


class FakeGitHub:
    def __init__(self, root: Path, *, token: str = "ghp_fake_token_0123456789", user: str = "octocat",
                 orgs: tuple[str, ...] = ("acme",)) -> None:
        self.root, self.token, self.user, self.orgs = root, token, user, set(orgs)
        root.mkdir(parents=True, exist_ok=True)
        self.repos: dict[str, dict[str, Any]] = {}
        self.dispatches: list[dict[str, Any]] = []
        self.server = FakeServer(self.route)
        self.host, self.url = self.server.host, self.server.url
        self.api_base_url = f"{self.url}/api/v3"

    @property
    def requests(self) -> list[Any]:
        return self.server.requests

    def close(self) -> None:
        self.server.close()

    def git_dir(self, owner: str, repo: str) -> Path:
        return self.root / owner / f"{repo}.git"

    def _create(self, owner: str, body: dict[str, Any]) -> Reply:
        name = str(body.get("name") or "")
        key = f"{owner}/{name}"
        if not name or key in self.repos:
            return Reply(422, {"message": "Repository creation failed.",
                               "errors": [{"resource": "Repository", "field": "name",
                                           "message": "name already exists on this account"}]})
        path = self.git_dir(owner, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
        repo = {"name": name, "full_name": key, "private": body.get("private", False),
                "visibility": body.get("visibility"), "description": body.get("description"),
                "html_url": f"{self.url}/{key}", "clone_url": f"{self.url}/git/{key}.git"}
        self.repos[key] = repo
        return Reply(201, repo)

    def route(self, method: str, target: str, body: Any, headers: dict[str, str]) -> Reply:
        parts = urlsplit(target)
        path = parts.path
        if path.startswith("/git/"):
            creds = basic_credentials(headers)
            if creds != ("x-access-token", self.token):
                return Reply(401, raw=b"bad credentials\n", headers={"WWW-Authenticate": 'Basic realm="fake"'})
            return git_http_backend(self.root, path[len("/git"):], method, parts.query, headers,
                                    body if isinstance(body, bytes) else b"", self.user)
        if headers.get("authorization") not in (f"token {self.token}", f"Bearer {self.token}"):
            return Reply(401, {"message": "Bad credentials"})
        path = path.removeprefix("/api/v3")
        if method == "GET" and (m := re.fullmatch(r"/users/([^/]+)", path)):
            login = m.group(1)
            if login in self.orgs:
                return Reply(200, {"login": login, "type": "Organization"})
            return Reply(200, {"login": login, "type": "User"}) if login == self.user else Reply(
                404, {"message": "Not Found"})
        if method == "POST" and (m := re.fullmatch(r"/orgs/([^/]+)/repos", path)):
            return self._create(m.group(1), body) if m.group(1) in self.orgs else Reply(404, {"message": "Not Found"})
        if method == "POST" and path == "/user/repos":
            return self._create(self.user, body)
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/actions/workflows/([^/]+)/dispatches", path)
        if method == "POST" and m:
            if f"{m.group(1)}/{m.group(2)}" not in self.repos or not isinstance(body, dict) or not body.get("ref"):
                return Reply(404 if isinstance(body, dict) and body.get("ref") else 422, {"message": "Not Found"})
            self.dispatches.append({"repo": f"{m.group(1)}/{m.group(2)}", "workflow": m.group(3), **body})
            return Reply(204)
        return Reply(404, {"message": "Not Found"})

"""Fixtures for the forge: a real ForgeService on a temporary root, served by a real uvicorn on a
free port, and a real ``git`` client with an isolated configuration.

The test app mounts ``router`` at ``/api/forge`` and ``git_router`` at ``/git`` behind a small
identity middleware that does what the portal's does: a known token (Bearer, or Basic with the
token as password) sets ``request.state.principal``, a wrong one is answered 401 with
``WWW-Authenticate: Basic``, none leaves the principal None (and /api/ then answers 401).
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from greenroom.auth.model import Principal
from greenroom.core.errors import GreenroomError
from greenroom.core.http import error_response
from greenroom.forge import api
from greenroom.forge.model import RefUpdate
from greenroom.forge.service import ForgeService

TOKEN = "forge-test-token-123"
ALICE = Principal(subject="user:default/alice", kind="user")


def build_app(service: ForgeService, seen: list[dict[str, str]]) -> FastAPI:
    app = FastAPI()
    app.state.portal = SimpleNamespace(services={"forge": service})

    @app.middleware("http")
    async def identify(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        seen.append({"method": request.method, "path": request.url.path,
                     "transfer-encoding": request.headers.get("transfer-encoding", ""),
                     "content-length": request.headers.get("content-length", ""),
                     "content-encoding": request.headers.get("content-encoding", "")})
        principal = None
        header = request.headers.get("authorization")
        if header:
            scheme, _, value = header.partition(" ")
            token = value.strip()
            if scheme.lower() == "basic":
                token = base64.b64decode(token).decode().partition(":")[2]
            if token != TOKEN:
                resp = error_response(request, 401, "AuthenticationError", "invalid token")
                if request.url.path.startswith("/git/"):
                    resp.headers["WWW-Authenticate"] = 'Basic realm="greenroom"'
                return resp
            principal = ALICE
        elif request.url.path.startswith("/api/"):
            return error_response(request, 401, "AuthenticationError", "Missing credentials")
        request.state.principal = principal
        return await call_next(request)

    @app.exception_handler(GreenroomError)
    async def _domain(request: Request, exc: GreenroomError) -> Response:
        return error_response(request, exc.status_code, exc.name, exc.message)

    app.include_router(api.router, prefix="/api/forge")
    app.include_router(api.git_router, prefix="/git")
    return app


@dataclass
class ForgeServer:
    service: ForgeService
    url: str
    port: int
    seen: list[dict[str, str]]
    pushes: list[tuple[str, str, list[RefUpdate]]] = field(default_factory=list)
    pushed: threading.Condition = field(default_factory=threading.Condition)

    def git_url(self, org: str, repo: str, token: str | None = TOKEN, user: str = "alice") -> str:
        creds = f"{user}:{token}@" if token else ""
        return f"http://{creds}127.0.0.1:{self.port}/git/{org}/{repo}.git"

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def wait_for_push(self, count: int, timeout: float = 10) -> list[tuple[str, str, list[RefUpdate]]]:
        """Listeners run after the response is sent, so a finished `git push` may precede them."""
        with self.pushed:
            self.pushed.wait_for(lambda: len(self.pushes) >= count, timeout)
        return list(self.pushes)


def _start(root: Path, anonymous_read: bool) -> tuple[ForgeServer, uvicorn.Server, threading.Thread]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    service = ForgeService(root, base_url=url, anonymous_read=anonymous_read,
                           max_blob_bytes=64 * 1024)
    seen: list[dict[str, str]] = []
    forge = ForgeServer(service=service, url=url, port=port, seen=seen)

    def listener(org: str, repo: str, updates: list[RefUpdate]) -> None:
        with forge.pushed:
            forge.pushes.append((org, repo, updates))
            forge.pushed.notify_all()

    service.add_push_listener(listener)
    server = uvicorn.Server(uvicorn.Config(build_app(service, seen), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    return forge, server, thread


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgeServer]:
    """A forge that needs credentials for everything."""
    forge, server, thread = _start(tmp_path_factory.mktemp("forge") / "git", anonymous_read=False)
    yield forge
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def open_forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgeServer]:
    """A forge configured with ``anonymous_read``."""
    forge, server, thread = _start(tmp_path_factory.mktemp("open-forge") / "git", anonymous_read=True)
    yield forge
    server.should_exit = True
    thread.join(timeout=10)


class GitClient:
    """The real git command line, isolated from the machine's configuration and never prompting."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@example.com",
            "GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@example.com",
            "LC_ALL": "C",
        }
        (home / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n")

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def commit_file(self, work: Path, name: str, content: str | bytes, message: str) -> str:
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        self.run("add", "--", name, cwd=work)
        self.run("commit", "-q", "-m", message, cwd=work)
        return self.run("rev-parse", "HEAD", cwd=work).stdout.strip()


@pytest.fixture
def git(tmp_path: Path) -> GitClient:
    return GitClient(tmp_path / "git-home")


_counter = iter(range(1_000_000))


@pytest.fixture
def repo_name() -> str:
    """A repository name unique within the module's server."""
    return f"repo-{os.getpid()}-{next(_counter)}"


def create(forge: ForgeServer, org: str, name: str, **body: Any) -> dict[str, Any]:
    with forge.client() as c:
        resp = c.post("/api/forge/repositories", json={"org": org, "name": name, **body})
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data

"""Fixtures for the catalog engine: the conformance corpus, a fake GitHub, a real local HTTP server."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from greenroom.catalog.engine import DefaultReadPolicy

_SHARED = Path(__file__).resolve().parents[4] / "shared"
if not _SHARED.exists():
    _SHARED = Path(os.environ.get("GREENROOM_SHARED", "../shared")).resolve()
CORPUS_DIR = _SHARED / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS_DIR.exists():
        pytest.skip("conformance corpus not available")
    return CORPUS_DIR


@pytest.fixture(scope="session")
def open_policy() -> DefaultReadPolicy:
    """Files anywhere under the given root; URLs only from github.com (served by FakeGitHub)."""
    return DefaultReadPolicy([{"host": "github.com"}], own_base_url="http://portal.test:7007")


class FakeGitHub:
    """HTTP-level stand-in for github.com ``/blob/`` URLs, served from a dict of path -> bytes.

    Omits everything else GitHub does (raw URLs, auth, rate limits, redirects to
    raw.githubusercontent.com); an unknown path is a 404. ``requests`` records every URL asked.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if request.url.host != "github.com":
            return httpx.Response(502, text="FakeGitHub only serves github.com")
        body = self.files.get(request.url.path)
        return httpx.Response(404, text="Not Found") if body is None else httpx.Response(200, content=body)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))


class LocalServer:
    """A real HTTP server on 127.0.0.1 serving ``files`` (path -> bytes) and recording each path hit."""

    def __init__(self, files: dict[str, bytes], redirects: dict[str, str]) -> None:
        self.files, self.redirects, self.hits = files, redirects, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                if self.path in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[self.path])
                    self.end_headers()
                    return
                body = outer.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"not found")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_server() -> Iterator[Any]:
    servers: list[LocalServer] = []

    def start(files: dict[str, bytes], redirects: dict[str, str] | None = None) -> LocalServer:
        s = LocalServer(files, redirects or {})
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


@pytest.fixture(scope="session")
def fake_github() -> Any:
    return FakeGitHub

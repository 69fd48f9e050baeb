"""A tiny threaded HTTP server for fakes, and a git smart-HTTP endpoint backed by real bare
repositories through ``git http-backend`` (CGI), so pushes are real git pushes."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


Route = Callable[[str, str, Any, dict[str, str]], Reply]


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        data = b"".join(chunks)
    else:
        data = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    if handler.headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip"):
        data = gzip.decompress(data)
    return data


def basic_credentials(headers: dict[str, str]) -> tuple[str, str] | None:
    value = headers.get("authorization", "")
    if not value.lower().startswith("basic "):
        return None
    user, _, password = base64.b64decode(value[6:]).decode().partition(":")
    return user, password


def git_http_backend(root: Path, path_info: str, method: str, query: str, headers: dict[str, str],
                     body: bytes, user: str) -> Reply:
    """Run ``git http-backend`` for one request against the bare repositories under ``root``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path_info, "REQUEST_METHOD": method,
        "QUERY_STRING": query, "CONTENT_TYPE": headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": user, "REMOTE_ADDR": "127.0.0.1",
        "GIT_HTTP_MAX_REQUEST_BUFFER": "100M", "HOME": str(root),
        "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.receivepack", "GIT_CONFIG_VALUE_0": "true",
    }
    proc = subprocess.run(["git", "http-backend"], check=False, input=body, env=env, capture_output=True, timeout=60)
    out = proc.stdout
    sep = out.find(b"\r\n\r\n")
    head, rest = (out[:sep], out[sep + 4:]) if sep >= 0 else out.split(b"\n\n", 1)
    status, reply_headers = 200, {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            reply_headers[name.strip()] = value.strip()
    return Reply(status, headers=reply_headers, raw=rest)


class FakeServer:
    """Serves ``route(method, path_with_query, json_or_bytes, headers)`` on a free port."""

    def __init__(self, route: Route) -> None:
        self.requests: list[Recorded] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                data = _read_body(self)
                headers = {k.lower(): v for k, v in self.headers.items()}
                parsed: Any = data
                if "json" in headers.get("content-type", "") and data:
                    parsed = json.loads(data)
                outer.requests.append(Recorded(self.command, self.path, parsed, headers))
                reply = route(self.command, self.path, parsed, headers)
                payload = reply.raw if reply.raw is not None else (
                    b"" if reply.body is None else json.dumps(reply.body).encode())
                self.send_response(reply.status)
                if reply.raw is None and reply.body is not None:
                    self.send_header("Content-Type", "application/json")
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

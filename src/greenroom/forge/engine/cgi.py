"""``git http-backend`` as a CGI subprocess, served as a streaming ASGI response.

Model: one HTTP request is one ``git http-backend`` process. The request body is copied from the
ASGI ``receive`` channel into the process's stdin chunk by chunk, while, concurrently, its stdout
is parsed as a CGI response (header lines up to a blank line: ``Status``, ``Content-Type``...)
and then relayed to ``send`` chunk by chunk. Neither direction is ever held whole in memory, so a
push of any size costs a few pipe buffers; back-pressure comes from awaiting each write.

Invariants: the process never outlives the request (a client disconnect or any error kills it);
its environment is built from scratch (see :func:`cgi_environment`), so nothing of the portal's
own environment, and no credential, reaches git.

Failure behaviour: if the process exits before writing a complete header block, the client gets
a 502 with a short message and git's stderr is logged (bounded). ``on_finish(returncode)`` is
awaited once the process has ended and the response is sent, whatever the outcome, also when the
client went away halfway (git may have moved refs before that): the caller decides what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream, Process
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from greenroom.core import logs
from greenroom.forge.engine.git import base_env

log = logging.getLogger("greenroom.forge.cgi")

MAX_HEADER_BYTES = 64 * 1024
READ_CHUNK = 64 * 1024
MAX_STDERR_BYTES = 8 * 1024
# Headers a CGI program may not set on our connection (the server frames the response itself).
_HOP_BY_HOP = {b"connection", b"transfer-encoding", b"keep-alive", b"content-length"}


@dataclass(frozen=True)
class CgiRequest:
    """What the process needs to know about the request, already validated by the caller."""

    project_root: Path
    path_info: str  # "/<org>/<repo>.git/<service path>"
    method: str
    query_string: str
    content_type: str | None
    content_length: str | None
    content_encoding: str | None
    git_protocol: str | None
    remote_user: str | None
    remote_addr: str | None


def cgi_environment(req: CgiRequest) -> dict[str, str]:
    """The complete environment of ``git http-backend``."""
    env = base_env({
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "GIT_PROJECT_ROOT": str(req.project_root),
        # Export every repository under the root: the route already decided who may read.
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": req.path_info,
        "REQUEST_METHOD": req.method,
        "QUERY_STRING": req.query_string,
    })
    optional = {
        "CONTENT_TYPE": req.content_type,
        # Absent for chunked bodies: http-backend then reads stdin to its end.
        "CONTENT_LENGTH": req.content_length,
        "HTTP_CONTENT_ENCODING": req.content_encoding,
        "GIT_PROTOCOL": req.git_protocol,
        "REMOTE_USER": req.remote_user,
        "REMOTE_ADDR": req.remote_addr,
    }
    env.update({k: v for k, v in optional.items() if v})
    return env


def parse_cgi_headers(block: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    """Status code and headers from a CGI header block (CRLF or LF line ends)."""
    status = 200
    headers: list[tuple[bytes, bytes]] = []
    for line in block.replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name, value = name.strip().lower(), value.strip()
        if name == b"status":
            code = value.split(b" ", 1)[0]
            status = int(code) if code.isdigit() else 500
        elif name not in _HOP_BY_HOP:
            headers.append((name, value))
    if status == 200 and any(n == b"location" for n, _ in headers):
        status = 302
    return status, headers


def _split_header_block(buffer: bytes) -> tuple[bytes, bytes] | None:
    for terminator in (b"\r\n\r\n", b"\n\n"):
        at = buffer.find(terminator)
        if at >= 0:
            return buffer[:at], buffer[at + len(terminator):]
    return None


class CgiResponse(Response):
    """An ASGI response that runs ``git http-backend`` for one request. A Starlette ``Response``
    only so frameworks pass it through untouched; status and headers come from the process."""

    def __init__(self, request: CgiRequest, argv: list[str],
                 on_finish: Callable[[int], Awaitable[None]] | None = None) -> None:
        super().__init__()
        self.request = request
        self.argv = argv
        self.on_finish = on_finish
        self._stderr = bytearray()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        returncode = -1
        process = await anyio.open_process(self.argv, env=cgi_environment(self.request),
                                           cwd=str(self.request.project_root))
        pump_scope = anyio.CancelScope()

        async def pump() -> None:
            assert process.stdin is not None
            with pump_scope:
                await self._pump_request(receive, process.stdin, process)

        try:
            async with anyio.create_task_group() as tg:
                assert process.stdout is not None and process.stderr is not None
                tg.start_soon(pump)
                tg.start_soon(self._collect_stderr, process.stderr)
                if not await self._relay_response(process.stdout, send):
                    process.kill()
                returncode = await process.wait()
                # git answered without reading the whole body (an error): stop waiting for it.
                pump_scope.cancel()
        finally:
            # Shielded: this must run even when the request is being cancelled (client gone).
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                await process.aclose()
                if process.returncode is not None:
                    returncode = process.returncode
                self._log_outcome(returncode)
                if self.on_finish is not None:
                    try:
                        await self.on_finish(returncode)
                    except Exception:  # the response is gone; all that is left to do is tell
                        log.exception("forge.http_backend_on_finish_failed")

    async def _pump_request(self, receive: Receive, stdin: ByteSendStream, process: Process) -> None:
        """Copy the request body into stdin; close stdin at its end. Stops quietly if git has
        already stopped reading (it answered early, e.g. with an error)."""
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    process.kill()
                    return
                body = message.get("body", b"")
                if body:
                    await stdin.send(body)
                if not message.get("more_body", False):
                    return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError,
                ConnectionResetError):
            return
        finally:
            try:
                await stdin.aclose()
            except (anyio.BrokenResourceError, BrokenPipeError, ConnectionResetError, OSError):
                pass

    async def _collect_stderr(self, stderr: ByteReceiveStream) -> None:
        async for chunk in stderr:
            room = MAX_STDERR_BYTES - len(self._stderr)
            if room > 0:
                self._stderr.extend(chunk[:room])

    async def _relay_response(self, stdout: ByteReceiveStream, send: Send) -> bool:
        """Relay the CGI response; False if the process wrote no valid header block."""
        buffer = b""
        split: tuple[bytes, bytes] | None = None
        async for chunk in stdout:
            buffer += chunk
            split = _split_header_block(buffer)
            if split is not None or len(buffer) > MAX_HEADER_BYTES:
                break
        if split is None:
            await _send_plain(send, 502, b"git http-backend gave no valid response; see the server log\n")
            return False
        header_block, rest = split
        status, headers = parse_cgi_headers(header_block)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if rest:
            await send({"type": "http.response.body", "body": rest, "more_body": True})
        async for chunk in stdout:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True

    def _log_outcome(self, returncode: int) -> None:
        level = logging.DEBUG if returncode == 0 else logging.WARNING
        logs.event(log, "forge.http_backend", level, path=self.request.path_info,
                   method=self.request.method, returncode=returncode,
                   stderr=bytes(self._stderr).decode("utf-8", "replace")[:2000] or None)


async def _send_plain(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def http_backend_argv(git: str) -> list[str]:
    return [git, "http-backend"]


__all__ = ["CgiRequest", "CgiResponse", "cgi_environment", "http_backend_argv", "parse_cgi_headers"]

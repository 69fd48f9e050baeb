"""Build a docs site in a separate, limited process and return the site plus its log.

Model: :class:`DocsBuilder` owns one long-lived *build server* process
(``build_child --serve``) that has MkDocs imported; each build is a ``fork()`` of it, so a build
costs about what an in-process warm build costs while a crash, a runaway diagram or a memory blow-up
only takes down that child. Builds are serialized through a lock (one server, one build at a time;
the worker runs one build per claim anyway). With ``use_server=False`` each build is a fresh
``python -m ...build_child --once`` process instead (slower: it pays the imports every time).

Failure behaviour: :meth:`DocsBuilder.build` never raises for a bad docs project. Refusals
(no mkdocs.yml, include escaping the folder, unsafe YAML) and build errors (unknown plugin, missing
PlantUML, timeout, memory limit) come back as ``BuildResult(ok=False, error=..., log=...)``. If the
server itself dies it is restarted on the next build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from greenroom.techdocs.engine.prepare import BuildRefused, prepare_source
from greenroom.techdocs.model import BrokenLink, BuildResult

_CHILD = "greenroom.techdocs.engine.build_child"
_LOG_LIMIT = 200_000  # characters of build log kept per build


class DocsBuilder:
    """Runs builds with a wall-time and memory limit; see the module docstring."""

    def __init__(self, *, timeout_s: float = 120.0, memory_mb: int = 1024, use_server: bool = True) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.use_server = use_server and hasattr(os, "fork")
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._seq = 0

    # -- server management -------------------------------------------------------------------
    def _server(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        proc = subprocess.Popen(
            [sys.executable, "-m", _CHILD, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1, env=_child_env(),
        )
        ready = _readline(proc.stdout, 60.0)
        if not ready or not json.loads(ready).get("ready"):
            proc.kill()
            raise RuntimeError("the docs build server did not start")
        self._proc = proc
        return proc

    def start(self) -> None:
        """Start the build server now (optional: the first build starts it)."""
        if self.use_server:
            with self._lock:
                self._server()

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None

    # -- builds ------------------------------------------------------------------------------
    def build(self, source_root: Path, site_dir: Path, *, etag: str = "") -> BuildResult:
        """Build the docs project at ``source_root`` into ``site_dir`` (created, must not exist)."""
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="greenroom-docs-") as tmp:
            work = Path(tmp)
            try:
                prepared = prepare_source(source_root, work)
            except BuildRefused as e:
                return BuildResult(ok=False, error=e.message, log=f"ERROR   - {e.message}\n",
                                   duration_s=time.perf_counter() - started)
            log_file = work / "build.log"
            log_file.write_text("".join(f"WARNING - {w}\n" for w in prepared.warnings), encoding="utf-8")
            req: dict[str, Any] = {
                "config_file": str(prepared.config_file), "site_dir": str(work / "site"),
                "log_file": str(log_file), "result_file": str(work / "result.json"),
                "timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "etag": etag,
            }
            state = self._run_server(req) if self.use_server else self._run_once(req)
            log = _tail(log_file)
            result = _read_result(work / "result.json")
            if result is None:
                error = {
                    "timeout": f"Build timed out after {self.timeout_s:g} s and was stopped; "
                               "simplify the docs (large diagrams?) or raise the build timeout",
                    "killed": f"Build was killed (memory limit {self.memory_mb} MB or CPU time)",
                }.get(state, f"Build process ended without a result ({state})")
                return BuildResult(ok=False, error=error, log=log + f"ERROR   - {error}\n",
                                   duration_s=time.perf_counter() - started)
            ok = bool(result.get("ok"))
            if ok:
                if site_dir.exists():
                    shutil.rmtree(site_dir)
                shutil.move(str(work / "site"), str(site_dir))
            return BuildResult(
                ok=ok, log=log, error=result.get("error"),
                broken_links=[BrokenLink(**b) for b in result.get("broken_links", [])],
                warnings=prepared.warnings + list(result.get("warnings", [])),
                duration_s=time.perf_counter() - started, site_name=prepared.site_name,
            )

    def _run_server(self, req: dict[str, Any]) -> str:
        with self._lock:
            try:
                proc = self._server()
            except RuntimeError:
                return "server failed to start"
            self._seq += 1
            req["id"] = self._seq
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(req) + "\n")
                proc.stdin.flush()
            except OSError:
                self._proc = None
                return "server gone"
            # The server enforces the build timeout itself; this guard catches a wedged server.
            line = _readline(proc.stdout, self.timeout_s + 30)
            if not line:
                proc.kill()
                proc.wait()
                self._proc = None
                return "server gone"
            return str(json.loads(line).get("state"))

    def _run_once(self, req: dict[str, Any]) -> str:
        proc = subprocess.Popen([sys.executable, "-m", _CHILD, "--once", json.dumps(req)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, env=_child_env())
        try:
            code = proc.wait(self.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            return "timeout"
        return "exited" if code >= 0 else "killed"


def _child_env() -> dict[str, str]:
    # Only what a build needs: no portal secrets reach MkDocs, plugins or PlantUML.
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "JAVA_HOME")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.setdefault("LANG", "C.UTF-8")
    return env


def _readline(stream: IO[str] | None, timeout: float) -> str | None:
    """One line from a pipe, or None after ``timeout`` seconds or at end of stream."""
    import select

    if stream is None:
        return None
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        return None
    return stream.readline() or None


def _tail(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text if len(text) <= _LOG_LIMIT else "…(log truncated)…\n" + text[-_LOG_LIMIT:]


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None

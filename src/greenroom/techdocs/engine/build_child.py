"""The process side of a docs build: runs MkDocs on a prepared config under resource limits.

Two ways in, both through ``python -m greenroom.techdocs.engine.build_child``:

* ``--serve``: a long-lived build server. It imports MkDocs, Material and techdocs-core once, then
  reads one JSON request per line on stdin, ``fork()``s a child per request (so every build starts
  from the same warm, clean interpreter and shares nothing with the next), waits at most
  ``timeout_s`` and answers one JSON line on its protocol fd. A child that overruns is killed with
  its whole process group (PlantUML's Java included).
* ``--once REQUEST_JSON``: one build in this very process (the cold path, and the fallback where
  ``fork`` is unavailable); the caller enforces the wall time.

A build child sets ``RLIMIT_DATA`` (heap and private mappings; ``RLIMIT_AS`` would stop the Java VM
from even starting), ``RLIMIT_CPU`` and ``RLIMIT_FSIZE``, starts its own process group, sends fds 1
and 2 to the request's log file, and writes ``result_file`` (``ok``, ``error``, ``broken_links``,
``warnings``). A child that dies without writing it is reported by the server as killed, timed out
or crashed, with its exit status; the log file always has whatever was printed until then.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

# mkdocs' own message for a link to a page that is not among the documentation files.
_BROKEN = re.compile(
    r"Doc file '(?P<page>[^']+)' contains a link '(?P<link>[^']+)', but the target "
    r"(?:'(?P<target>[^']+)' )?is not found among documentation files"
)
_BROKEN_ANCHOR = re.compile(
    r"Doc file '(?P<page>[^']+)' contains a link '(?P<link>[^']+)', but (?:the doc '[^']+' "
    r"does not contain|there is no such) an? anchor"
)
GREENROOM_SITE_FILE = "greenroom_site.json"
GREENROOM_PAGES_DIR = "greenroom_pages"


_WARM_MODULES = (
    "markdown", "material", "mkdocs.commands.build", "mkdocs.config", "mkdocs.plugins",
    "mkdocs_monorepo_plugin.plugin", "plantuml_markdown", "pygments.lexers", "pymdownx.emoji",
    "pymdownx.highlight", "pymdownx.superfences", "techdocs_core.core",
    "material.plugins.search.plugin",
)


def warm_imports() -> None:
    """Import what every build needs, once, before forking."""
    import importlib

    for name in _WARM_MODULES:
        importlib.import_module(name)
    from mkdocs.plugins import get_plugins

    for ep in get_plugins().values():
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - a broken third-party plugin fails only its builds
            sys.stderr.write(f"mkdocs plugin {ep.name} does not load: {e}\n")


class _LinkCollector(logging.Handler):
    """Turns MkDocs' link warnings into data and echoes every record to the build log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.broken: list[dict[str, str]] = []
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        sys.stderr.write(f"{record.levelname:<7} - {msg}\n")
        m = _BROKEN.search(msg) or _BROKEN_ANCHOR.search(msg)
        if m and record.levelno >= logging.INFO:
            self.broken.append({"page": m["page"], "link": m["link"],
                                "kind": "anchor" if m.re is _BROKEN_ANCHOR else "page"})
        elif record.levelno >= logging.ERROR:
            self.errors.append(msg)
        elif record.levelno >= logging.WARNING:
            self.warnings.append(msg)


def _nav_item(item: Any) -> dict[str, Any]:
    children = getattr(item, "children", None)
    out: dict[str, Any] = {"title": item.title or "", "url": getattr(item, "url", None)}
    if getattr(item, "is_link", False):
        out["external"] = True
    if children:
        out["children"] = [_nav_item(c) for c in children]
    return out


def _toc_item(anchor: Any) -> dict[str, Any]:
    return {"title": anchor.title, "id": anchor.id, "level": anchor.level,
            "children": [_toc_item(c) for c in anchor.children]}


def _capture_plugin() -> Any:
    """A MkDocs plugin that keeps each page's body, TOC and the nav for portal pages."""
    from mkdocs.plugins import BasePlugin

    class Capture(BasePlugin):  # type: ignore[type-arg,no-untyped-call]
        def __init__(self) -> None:
            self.pages: dict[str, dict[str, Any]] = {}
            self.bodies: dict[str, str] = {}
            self.nav: Any = None

        def on_nav(self, nav: Any, config: Any, files: Any) -> Any:
            self.nav = nav
            return nav

        def on_page_content(self, html: str, page: Any, config: Any, files: Any) -> str:
            dest = page.file.dest_uri
            self.pages[dest] = {"title": page.title or "", "url": page.url,
                                "src": page.file.src_uri, "toc": [_toc_item(a) for a in page.toc]}
            self.bodies[dest] = html
            return html

        def on_post_build(self, config: Any) -> None:
            site = Path(config["site_dir"])
            for dest, body in self.bodies.items():
                target = site / GREENROOM_PAGES_DIR / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(body, encoding="utf-8")
            nav = [_nav_item(i) for i in self.nav.items] if self.nav else []
            (site / GREENROOM_SITE_FILE).write_text(
                json.dumps({"site_name": config["site_name"], "nav": nav, "pages": self.pages}),
                encoding="utf-8")

    return Capture()


def _finish_metadata(site: Path, etag: str) -> None:
    """Complete techdocs-core's ``techdocs_metadata.json`` the way Backstage does."""
    meta_path = site / "techdocs_metadata.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    meta["build_timestamp"] = int(time.time() * 1000)
    meta["etag"] = etag
    files = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())
    meta["files"] = sorted({*files, "techdocs_metadata.json"})
    meta_path.write_text(json.dumps(meta), encoding="utf-8")


def run_build(req: dict[str, Any]) -> dict[str, Any]:
    """Build ``req['config_file']`` into ``req['site_dir']``; never raises."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, ConfigurationError, PluginError

    collector = _LinkCollector()
    mk_log = logging.getLogger("mkdocs")
    mk_log.handlers[:] = [collector]
    mk_log.setLevel(logging.INFO)
    mk_log.propagate = False
    started = time.perf_counter()
    result: dict[str, Any] = {"ok": False, "error": None, "broken_links": [], "warnings": []}
    try:
        os.chdir(Path(req["config_file"]).parent)
        cfg = load_config(config_file=req["config_file"], site_dir=req["site_dir"])
        cfg.plugins["greenroom-capture"] = _capture_plugin()
        build(cfg)
        _finish_metadata(Path(req["site_dir"]), req.get("etag", ""))
        result["ok"] = True
    except ConfigurationError as e:
        result["error"] = f"MkDocs configuration error: {e}"
    except PluginError as e:
        result["error"] = f"MkDocs plugin error: {e}"
    except Abort as e:
        # MkDocs logs the cause as ERROR records and raises a generic Abort: report the cause.
        result["error"] = "MkDocs error: " + ("; ".join(collector.errors) or str(e))
    except Exception as e:  # noqa: BLE001 - any failure of a build is a result, not a crash
        text = f"{type(e).__name__}: {e}"
        if "plantuml" in text.lower():
            text += ("; the PlantUML tool is not installed on the portal host "
                     "(Debian: apt-get install plantuml)")
        result["error"] = f"Build failed: {text}"
        import traceback

        traceback.print_exc()
    result["broken_links"] = collector.broken
    result["warnings"] = collector.warnings
    result["duration_s"] = round(time.perf_counter() - started, 3)
    return result


def _child_setup(req: dict[str, Any]) -> None:
    try:
        os.setpgid(0, 0)
    except OSError:  # already a session leader (started with start_new_session)
        pass
    mem = int(req.get("memory_mb", 1024)) << 20
    resource.setrlimit(resource.RLIMIT_DATA, (mem, mem))
    cpu = int(req.get("timeout_s", 120)) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    fsize = int(req.get("max_file_mb", 256)) << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    log_fd = os.open(req["log_file"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    # PlantUML may not read local files or fetch URLs from a diagram (honoured by PlantUML ≥ 2021).
    os.environ["PLANTUML_SECURITY_PROFILE"] = "SANDBOX"
    os.environ.pop("JAVA_TOOL_OPTIONS", None)


def _write_result(req: dict[str, Any], result: dict[str, Any]) -> None:
    Path(req["result_file"]).write_text(json.dumps(result), encoding="utf-8")


def _wait(pid: int, timeout: float) -> tuple[str, int]:
    """Wait for ``pid`` at most ``timeout`` seconds; kill its group on overrun."""
    deadline = time.monotonic() + timeout
    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    try:
        while True:
            left = deadline - time.monotonic()
            if pidfd is not None:
                select.select([pidfd], [], [], max(left, 0))
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.WIFSIGNALED(status):
                    sig = os.WTERMSIG(status)
                    return ("killed" if sig in (signal.SIGKILL, signal.SIGXCPU) else "crashed"), sig
                return "exited", os.WEXITSTATUS(status)
            if left <= 0:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.waitpid(pid, 0)
                return "timeout", 0
            if pidfd is None:
                time.sleep(0.005)
    finally:
        if pidfd is not None:
            os.close(pidfd)


class _MemoryBytecodeCache:
    """Compiled Jinja templates shared by every build the server forks (keyed by source checksum)."""

    def __new__(cls) -> Any:
        import jinja2

        class Cache(jinja2.BytecodeCache):
            def __init__(self) -> None:
                self.store: dict[str, bytes] = {}

            def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
                if bucket.key in self.store:
                    bucket.bytecode_from_string(self.store[bucket.key])

            def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
                self.store[bucket.key] = bucket.bytecode_to_string()

        return Cache()


def warm_server() -> None:
    """Make forks start hot: share compiled theme templates and run one throwaway build.

    MkDocs builds a fresh Jinja environment per build, and compiling Material's templates is about
    a third of a small build. The throwaway build fills the shared cache (and lazy imports) in the
    server, so every forked child inherits them."""
    import tempfile

    from mkdocs.theme import Theme

    cache = _MemoryBytecodeCache()
    original = Theme.get_env

    def get_env(self: Any) -> Any:
        env = original(self)
        env.bytecode_cache = cache
        return env

    Theme.get_env = get_env  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="greenroom-warm-") as tmp:
        root = Path(tmp)
        (root / "docs").mkdir()
        (root / "mkdocs.yml").write_text("site_name: warm\nplugins: [techdocs-core]\n", encoding="utf-8")
        (root / "docs" / "index.md").write_text(
            "# Warm\n\n!!! note\n    text :smile:\n\n```python\nprint(1)\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
            encoding="utf-8")
        cwd = os.getcwd()
        try:
            logging.getLogger("mkdocs").setLevel(logging.ERROR)
            req = {"config_file": str(root / "mkdocs.yml"), "site_dir": str(root / "site")}
            run_build(req)
        finally:
            os.chdir(cwd)


def serve(proto_out: int) -> None:
    warm_imports()
    warm_server()
    out = os.fdopen(proto_out, "w", buffering=1)
    out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _child_setup(req)
                result = run_build(req)
                _write_result(req, result)
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:  # noqa: BLE001 - the child must always leave through _exit
                code = 70
            os._exit(code)
        state, detail = _wait(pid, float(req.get("timeout_s", 120)))
        out.write(json.dumps({"id": req.get("id"), "state": state, "detail": detail}) + "\n")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        # Keep the protocol channel private: anything printed by a library goes to stderr.
        proto = os.dup(1)
        os.dup2(2, 1)
        serve(proto)
        return 0
    if argv[:1] == ["--once"] and len(argv) == 2:
        req = json.loads(argv[1])
        _child_setup(req)
        _write_result(req, run_build(req))
        return 0
    sys.stderr.write("usage: build_child --serve | --once REQUEST_JSON\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

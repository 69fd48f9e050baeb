"""Find the docs of an entity on disk: resolve ``backstage.io/techdocs-ref``, clone, measure age.

* ``dir:<path>`` is relative to the folder of the entity's ``backstage.io/managed-by-location``.
  For a ``file:`` location the result must stay inside that file's repository (its git top level,
  or the file's folder when it is not in git). For a ``url:`` location in a hosted repository
  (``…/blob/<ref>/<path>`` or ``…/tree/<ref>/<path>``) the repository is cloned.
* ``url:<repository URL>`` (optionally ``/tree/<ref>/<sub/path>``) is cloned.

Cloning only reaches hosts on the allow list, only over http(s), without prompts, with a time
limit, into a private temporary folder the caller removes. It is a partial clone
(``--filter=blob:none --single-branch``) rather than ``--depth 1``: file contents of the one
checked-out commit are all that is downloaded, but the commit history is there, which freshness
needs (with ``--depth 1`` every path would seem to change in the same commit).

Freshness: ``git log -1 --format=%ct`` over the docs paths (config file + docs folder) versus over
the rest of the repository. Outside git, freshness is unknown.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from greenroom.techdocs.engine.prepare import CONFIG_NAMES
from greenroom.techdocs.model import Freshness

_TREE = re.compile(r"^(?P<repo>.+?)(?:/-)?/(?:tree|blob|src)/(?P<ref>[^/]+)(?:/(?P<path>.*))?$")
GIT_TIMEOUT_S = 120.0


class SourceError(Exception):
    """The docs source cannot be found or fetched; ``message`` says which annotation to fix.
    ``transient`` marks failures worth retrying (network, remote host)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass
class DocsSource:
    docs_root: Path
    repo_root: Path | None
    cleanup_dir: Path | None = None  # a clone to delete after the build


def _git(args: list[str], cwd: Path | None = None, timeout: float = 30.0) -> str:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="/bin/true", GIT_CONFIG_NOSYSTEM="1")
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
                          env=env, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, ["git", *args], proc.stdout, proc.stderr)
    return proc.stdout.strip()


def git_toplevel(path: Path) -> Path | None:
    try:
        return Path(_git(["rev-parse", "--show-toplevel"], cwd=path)).resolve()
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired):
        return None


def host_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    return any(fnmatch.fnmatchcase(netloc, a.lower()) or fnmatch.fnmatchcase(host, a.lower())
               for a in allowed)


def _split_repo_url(url: str) -> tuple[str, str | None, str]:
    """(clone URL, ref or None, path inside the repository)."""
    m = _TREE.match(url.rstrip("/"))
    if m:
        return m["repo"], m["ref"], (m["path"] or "")
    return url.rstrip("/"), None, ""


def clone(url: str, allowed: tuple[str, ...]) -> tuple[Path, str]:
    """Clone the repository of ``url`` into a new temp dir; returns (checkout, path in repo)."""
    if not host_allowed(url, allowed):
        host = urlsplit(url).netloc or url
        raise SourceError(f"techdocs-ref: host {host} is not allowed for docs; add it to "
                          "backend.reading.allow (or integrations) in app-config, or use dir:")
    repo, ref, sub = _split_repo_url(url)
    tmp = Path(tempfile.mkdtemp(prefix="greenroom-docs-src-"))
    args = ["-c", "protocol.allow=never", "-c", "protocol.https.allow=always",
            "-c", "protocol.http.allow=always", "clone", "--quiet", "--filter=blob:none",
            "--single-branch", "--no-tags"]
    if ref:
        args += ["--branch", ref]
    try:
        _git([*args, "--", repo, str(tmp / "repo")], timeout=GIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SourceError(f"cloning {repo} took longer than {GIT_TIMEOUT_S:g} s", transient=True) from None
    except subprocess.CalledProcessError as e:
        detail = (e.stderr or "").strip().splitlines()[-1:] or ["git failed"]
        raise SourceError(f"cannot clone {repo}{f' at {ref}' if ref else ''}: {detail[0]}",
                          transient=True) from None
    return tmp / "repo", sub


def _inside(root: Path, p: Path) -> bool:
    return p.resolve().is_relative_to(root.resolve())


def resolve(managed_by: str | None, techdocs_ref: str | None, allowed: tuple[str, ...]) -> DocsSource:
    """Where the docs of an entity are; :class:`SourceError` with the fix when they can't be found."""
    if not techdocs_ref:
        raise SourceError("the entity has no backstage.io/techdocs-ref annotation; add "
                          "`backstage.io/techdocs-ref: dir:.` next to a mkdocs.yml")
    kind, _, target = techdocs_ref.partition(":")
    if kind == "url":
        checkout, sub = clone(target, allowed)
        root = (checkout / sub).resolve()
        if not _inside(checkout, root):
            raise SourceError(f"techdocs-ref {techdocs_ref}: path leaves the repository")
        return DocsSource(root, checkout, cleanup_dir=checkout.parent)
    if kind != "dir":
        raise SourceError(f"techdocs-ref {techdocs_ref!r}: unsupported type {kind!r}; use dir:<path> "
                          "or url:<repository URL>")
    if not managed_by:
        raise SourceError("techdocs-ref dir: needs the backstage.io/managed-by-location annotation "
                          "to know where the entity file is")
    loc_type, _, loc = managed_by.partition(":")
    if loc_type == "file":
        base = Path(loc).parent.resolve()
        repo = git_toplevel(base) if base.is_dir() else None
        boundary = repo or base
        root = (base / target).resolve()
        if not _inside(boundary, root):
            raise SourceError(f"techdocs-ref {techdocs_ref}: {root} is outside the repository "
                              f"{boundary}; point dir: at a folder inside it")
        if not root.is_dir():
            raise SourceError(f"techdocs-ref {techdocs_ref}: folder {root} does not exist")
        return DocsSource(root, repo)
    if loc_type == "url":
        repo_url, ref, path = _split_repo_url(loc)
        if ref is None:
            raise SourceError(f"managed-by-location {managed_by}: cannot tell the repository and "
                              "branch from this URL; use url:<repository>/tree/<branch>/<path>")
        checkout, _ = clone(f"{repo_url}/tree/{ref}", allowed)
        root = (checkout / os.path.dirname(path) / target).resolve()
        if not _inside(checkout, root):
            raise SourceError(f"techdocs-ref {techdocs_ref}: path leaves the repository")
        return DocsSource(root, checkout, cleanup_dir=checkout.parent)
    raise SourceError(f"managed-by-location {managed_by!r}: unsupported type {loc_type!r}")


def commit_sha(repo: Path | None) -> str | None:
    if repo is None:
        return None
    try:
        return _git(["rev-parse", "HEAD"], cwd=repo)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return None


def _last_change(repo: Path, pathspecs: list[str]) -> int | None:
    try:
        out = _git(["log", "-1", "--format=%ct", "--", *pathspecs], cwd=repo)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return None
    return int(out) if out.strip().isdigit() else None


def freshness(source: DocsSource) -> Freshness:
    """When the docs and the rest of the repository last changed (git commit times)."""
    repo = source.repo_root
    if repo is None:
        return Freshness(None, None)
    rel = source.docs_root.resolve().relative_to(repo.resolve()).as_posix()
    prefix = "" if rel == "." else rel + "/"
    docs = [f"{prefix}{n}" for n in (*CONFIG_NAMES, "docs") if (source.docs_root / n).exists()]
    if not docs:
        return Freshness(None, None)
    code = ["."] + [f":(exclude){d}" for d in docs]
    return Freshness(_last_change(repo, docs), _last_change(repo, code))


def source_version(source: DocsSource) -> str:
    """What identifies the docs content: the commit, or the newest file time outside git."""
    sha = commit_sha(source.repo_root)
    if sha:
        return sha
    newest = 0.0
    for dirpath, dirnames, filenames in os.walk(source.docs_root):
        dirnames[:] = [d for d in dirnames if d not in (".git", "node_modules", "site")]
        for name in filenames:
            try:
                newest = max(newest, os.stat(os.path.join(dirpath, name)).st_mtime)
            except OSError:
                continue
    return f"mtime:{newest:.3f}"


def remote_version(techdocs_ref: str, allowed: tuple[str, ...]) -> str | None:
    """The commit a ``url:`` techdocs-ref points at now (``git ls-remote``), None if unknown."""
    url = techdocs_ref.partition(":")[2]
    if not host_allowed(url, allowed):
        return None
    repo, ref, _ = _split_repo_url(url)
    try:
        out = _git(["ls-remote", "--", repo, ref or "HEAD"], timeout=30)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return None
    first = out.split()
    return first[0] if first else None

"""Where a template's own files come from when a run (task, dry-run, editor) fetches them with a
relative ``url`` (``./skeleton``, ``../../../skeletons/x``).

Model. A template's ``baseUrl`` (see ``templates.base_urls``) says where it was read from:

* ``file:`` — its directory on disk is used as it is (nothing to materialise);
* a raw or web file URL of the built-in git host — the repository at that ref is exported
  (``ForgeService.export``) into a scratch directory; ``base_dir`` is the template's folder inside
  it and ``repository_root`` the export root, so climbing with ``..`` works inside the repository
  and the fetch actions refuse anything past it, exactly as for a file location in a git checkout.
  Only the smallest subtree holding the template and every literal relative target is exported;
  a computed url (``${{ … }}``) exports the whole repository;
* any other ``http(s)`` URL (allowed by ``backend.reading.allow``) — directories cannot be listed
  over plain HTTP, so only single files (``fetch:plain:file``, ``fetch:template:file`` with a
  literal url) are read, one request each, into a scratch tree that mirrors the URL paths. A
  relative *directory* fetch is refused up front with the fix (move the template to the built-in
  host or a file location, or give an absolute url).

Nothing is materialised unless some step has a relative ``url``.

Failure behaviour: every problem is an ``InputError`` (``NotAllowedError`` for a host outside
the allow list) naming the template's location, the step and the fix; the scratch directory is
removed whatever happens (``TemplateSources.files`` is a context manager; tasks remove theirs when
they finish, see ``ScaffolderService``).
"""

from __future__ import annotations

import posixpath
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import anyio
import httpx

from greenroom.core.config import Settings
from greenroom.core.errors import GreenroomError, InputError, NotAllowedError
from greenroom.forge import model as forge_model
from greenroom.forge import service as forge_service

FILE_ACTIONS = frozenset({"fetch:plain:file", "fetch:template:file"})
MAX_EXPORT_BYTES = 100 * 1024 * 1024
MAX_EXPORT_FILES = 20_000
MAX_URL_FILE_BYTES = 10 * 1024 * 1024
HTTP_TIMEOUT_SECONDS = 10.0
MAX_REDIRECTS = 5
_ABSOLUTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class TemplateFiles:
    """A template's folder on disk and how far relative fetches may climb (both None when the
    template has no folder); ``scratch`` is what to delete afterwards (None: nothing copied)."""

    base_dir: Path | None = None
    repository_root: Path | None = None
    scratch: Path | None = None


@dataclass(frozen=True)
class RelativeFetch:
    step_id: str
    action: str
    url: str
    conditional: bool = False

    @property
    def computed(self) -> bool:
        return "${{" in self.url


def relative_fetches(steps: Sequence[Any]) -> list[RelativeFetch]:
    """Steps whose ``url`` input is relative to the template (what needs its files on disk)."""
    found = []
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        url = (step.get("input") or {}).get("url") if isinstance(step.get("input"), Mapping) else None
        if isinstance(url, str) and url and not _ABSOLUTE_URL.match(url):
            found.append(RelativeFetch(str(step.get("id") or f"step-{index}"), str(step.get("action")), url,
                                       conditional=step.get("if") is not None))
    return found


def file_dir(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


class TemplateSources:
    """Materialises a template's files for a run; see the module docstring."""

    def __init__(self, settings: Settings, forge: forge_service.ForgeService | None) -> None:
        self.forge = forge
        own = urlsplit(settings.backend.baseUrl)
        self._allowed = [(a.host.strip().lower(), a.paths or []) for a in settings.backend.reading.allow]
        if own.hostname:  # the portal's own host is always allowed, as for catalog locations
            self._allowed.append((f"{own.hostname}:{own.port}" if own.port else own.hostname, []))

    # -- classification ---------------------------------------------------------------------
    def _forge_location(self, base_url: str) -> forge_model.RawLocation | None:
        return self.forge.parse_raw_url(base_url) if self.forge is not None else None

    def check(self, base_url: str | None, steps: Sequence[Any]) -> None:
        """Refuse, before anything runs, what can never work: a relative directory fetch (or a
        computed relative url) in a template read from a plain URL."""
        if not base_url or not base_url.startswith(("http://", "https://")):
            return
        if self._forge_location(base_url) is not None:
            return
        for fetch in relative_fetches(steps):
            if fetch.action not in FILE_ACTIONS or fetch.computed:
                what = ("a computed url" if fetch.computed and fetch.action in FILE_ACTIONS
                        else "a directory")
                raise InputError(
                    f"step {fetch.step_id!r} ({fetch.action}) fetches {what} ({fetch.url!r}) relative to "
                    f"a template read from {base_url}; only single files with a literal url can be read "
                    "from a plain URL. Push the template to the built-in git host (register its "
                    "…/git/<org>/<repo>/raw/<ref>/… URL) or register it from a file location, or give "
                    "the step an absolute url")

    # -- materialising ----------------------------------------------------------------------
    def materialize(self, base_url: str | None, root_url: str | None, steps: Sequence[Any],
                    scratch: Path) -> TemplateFiles:
        """Put the template's files on disk (below ``scratch``, created here) when some step needs
        them. Blocking (git, HTTP): call it from a worker thread."""
        if not base_url:
            return TemplateFiles()
        if base_url.startswith("file:"):
            base = file_dir(base_url)
            return TemplateFiles(base, file_dir(root_url) if root_url and root_url.startswith("file:") else base)
        fetches = relative_fetches(steps)
        if not fetches or not base_url.startswith(("http://", "https://")):
            return TemplateFiles()
        location = self._forge_location(base_url)
        try:
            if location is not None:
                return self._export(location, base_url, fetches, scratch)
            self.check(base_url, steps)
            return self._download(base_url, fetches, scratch)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise

    @asynccontextmanager
    async def files(self, base_url: str | None, root_url: str | None, steps: Sequence[Any],
                    scratch: Path) -> AsyncIterator[TemplateFiles]:
        """``materialize`` for the length of a ``with`` block; the scratch copy is removed after."""
        found = await anyio.to_thread.run_sync(self.materialize, base_url, root_url, steps, scratch)
        try:
            yield found
        finally:
            if found.scratch is not None:
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(scratch, ignore_errors=True))

    def _export(self, location: forge_model.RawLocation, base_url: str, fetches: list[RelativeFetch],
                scratch: Path) -> TemplateFiles:
        assert self.forge is not None
        org, repo = location.org, location.repo
        try:
            ref, commit, folder = self.forge.split_ref_path(org, repo, location.ref_and_path)
        except GreenroomError as exc:
            raise InputError(f"cannot read the template's files from {base_url}: {exc.message}") from None
        subtree = folder
        for fetch in fetches:
            if fetch.computed:
                subtree = ""
                continue
            target = posixpath.normpath(posixpath.join(folder or ".", fetch.url))
            if target == ".." or target.startswith(("../", "/")):
                if fetch.conditional:
                    continue  # refused by the fetch action if the step runs at all
                raise InputError(
                    f"step {fetch.step_id!r} ({fetch.action}): url {fetch.url!r} resolves outside the "
                    f"template's repository {org}/{repo} (the template is in "
                    f"{folder + '/' if folder else 'the root'} at {ref}); relative urls may only reach "
                    "files inside that repository: move the files into it or use an absolute url")
            subtree = _common_dir(subtree, "" if target == "." else target)
        root = scratch / "repository"
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            self.forge.export(org, repo, commit, root / subtree if subtree else root, subtree or None,
                              max_bytes=MAX_EXPORT_BYTES, max_files=MAX_EXPORT_FILES)
        except GreenroomError as exc:
            raise InputError(f"cannot read the template's files from {base_url}: {exc.message}") from None
        base_dir = root / folder if folder else root
        base_dir.mkdir(parents=True, exist_ok=True)  # a template folder holding only template.yaml
        return TemplateFiles(base_dir, root, scratch)

    def _download(self, base_url: str, fetches: list[RelativeFetch], scratch: Path) -> TemplateFiles:
        root = scratch / "url"
        base_dir = root / urlsplit(base_url).path.lstrip("/")
        base_dir.mkdir(parents=True, exist_ok=True)
        with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as client:
            for fetch in fetches:
                if fetch.url.startswith(("/", "\\")):
                    continue  # absolute paths are refused by the fetch action itself
                inside = posixpath.normpath(posixpath.join(urlsplit(base_url).path.lstrip("/"), fetch.url))
                if inside == ".." or inside.startswith("../"):
                    continue  # climbs above the host's root: the fetch action refuses it
                url = urljoin(base_url, fetch.url)
                local = root / urlsplit(url).path.lstrip("/")
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(self._read(client, url, fetch))
        return TemplateFiles(base_dir, root, scratch)

    def _check_allowed(self, url: str) -> None:
        """``backend.reading.allow`` as the catalog applies it: ``host``, ``host:port`` or
        ``*.domain`` (subdomains only), optionally limited to path prefixes."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        for rule, paths in self._allowed:
            rule_host, _, rule_port = rule.partition(":")
            host_ok = host.endswith(rule_host[1:]) if rule_host.startswith("*.") else host == rule_host
            port_ok = not rule_port or (rule_port.isdigit() and int(rule_port) == port)
            if host_ok and port_ok and (not paths or any(
                    posixpath.normpath(parts.path).startswith(p) for p in paths)):
                return
        raise NotAllowedError(f"Reading the template file {url} is not allowed: host {parts.netloc} is not "
                              "listed in backend.reading.allow; add it there to read from it")

    def _read(self, client: httpx.Client, url: str, fetch: RelativeFetch) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            self._check_allowed(url)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise InputError(f"step {fetch.step_id!r} ({fetch.action}): cannot fetch {fetch.url!r}: "
                                         f"{url} answered HTTP {response.status_code}; check the file exists "
                                         "beside the template")
                    data = b""
                    for chunk in response.iter_bytes():
                        data += chunk
                        if len(data) > MAX_URL_FILE_BYTES:
                            raise InputError(f"step {fetch.step_id!r}: {url} is larger than "
                                             f"{MAX_URL_FILE_BYTES // (1024 * 1024)} MiB")
                    return data
            except httpx.HTTPError as exc:
                raise InputError(f"step {fetch.step_id!r} ({fetch.action}): cannot fetch {url}: {exc}") from None
        raise InputError(f"step {fetch.step_id!r}: {url}: more than {MAX_REDIRECTS} redirects")


class TaskTemplateFiles:
    """The materialised template files of the tasks this replica runs: ``<tasks>/<id>.template``,
    beside each task's workspace. Created when a task is claimed, dropped when it finishes."""

    def __init__(self, sources: TemplateSources, root: Path) -> None:
        self.sources = sources
        self.root = root
        self._dirs: dict[str, Path] = {}

    def path_for(self, task_id: str) -> Path:
        return self.root / f"{task_id}.template"

    def prepare(self, task_id: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """``spec`` as the worker runs it: when the template's files had to be materialised, its
        ``templateInfo`` points at the local copy (in memory only; the stored spec keeps the URL).
        Blocking; raises like ``TemplateSources.materialize``."""
        info = spec.get("templateInfo") or {}
        scratch = self.path_for(task_id)
        shutil.rmtree(scratch, ignore_errors=True)  # a leftover of an earlier attempt
        files = self.sources.materialize(info.get("baseUrl"), info.get("rootUrl"), spec.get("steps") or [],
                                         scratch)
        if files.scratch is None or files.base_dir is None or files.repository_root is None:
            return dict(spec)
        self._dirs[task_id] = files.scratch
        local = {**info, "baseUrl": files.base_dir.as_uri() + "/", "rootUrl": files.repository_root.as_uri() + "/"}
        return {**spec, "templateInfo": local}

    def drop(self, task_id: str) -> None:
        path = self._dirs.pop(task_id, None)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)

    def sweep(self, still_running: Callable[[str], bool], *, older_than: float) -> None:
        """Drop the files of tasks no longer running here, then stale ``*.template`` leftovers."""
        for task_id in list(self._dirs):
            if not still_running(task_id):
                self.drop(task_id)
        sweep_scratch(self.root, keep=set(self._dirs.values()), older_than=older_than)


def _common_dir(a: str, b: str) -> str:
    """The deepest directory holding both repository paths ("" is the root)."""
    left, right = [p for p in a.split("/") if p], [p for p in b.split("/") if p]
    common = []
    for x, y in zip(left, right, strict=False):
        if x != y:
            break
        common.append(x)
    return "/".join(common)


def sweep_scratch(root: Path, *, keep: set[Path], older_than: float) -> int:
    """Remove ``*.template`` scratch directories under ``root`` not in ``keep`` and untouched
    for ``older_than`` seconds (no run lasts that long, so none is in use by any replica)."""
    if not root.is_dir():
        return 0
    now = time.time()
    removed = 0
    for entry in root.iterdir():
        if entry.name.endswith(".template") and entry not in keep and entry.is_dir():
            try:
                stale = now - entry.stat().st_mtime > older_than
            except OSError:
                continue
            if stale:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed

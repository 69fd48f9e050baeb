"""Use cases of the built-in git host: repositories, reading trees and files, commit history,
commits made by the portal, smart HTTP access and push notifications.

Repositories live on disk as ``<root>/<org>/<repo>.git`` (``root`` is ``$GREENROOM_HOME/git``);
there is no table: the repository's own ``description`` file and ``HEAD`` hold its metadata, so
a repository copied in by hand is served as it is. Every name and path is validated by
:mod:`greenroom.forge.model` before it is joined to ``root`` or handed to git.

Who may do what: reading (clone, fetch, the read methods here) needs a principal unless
``anonymous_read``; pushing always needs one. Finer permissions come with the permission
framework; ``principal`` is already passed where it will be checked.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

import anyio

from greenroom.auth.model import Principal
from greenroom.core import logs
from greenroom.core.errors import AuthenticationError, ConflictError, InputError, NotFoundError
from greenroom.forge.engine.archive import UnsafeArchiveError, archive_tree
from greenroom.forge.engine.cgi import CgiRequest, CgiResponse, http_backend_argv
from greenroom.forge.engine.git import BareRepository, GitError, git_binary, init_bare, is_valid_ref_name
from greenroom.forge.model import (
    MAX_DESCRIPTION_LENGTH,
    Author,
    Blob,
    Commit,
    CommitPage,
    ForgeUrls,
    PushListener,
    RawLocation,
    Readme,
    Refs,
    RefUpdate,
    Repository,
    Tree,
    check_name,
    check_path,
    decode_cursor,
    encode_cursor,
    looks_like_sha,
)

log = logging.getLogger("greenroom.forge")

DEFAULT_MAX_BLOB_BYTES = 1024 * 1024
DEFAULT_MAX_RAW_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_EXPORT_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_EXPORT_FILES = 20_000
MAX_COMMITS_PAGE = 100
_DEFAULT_DESCRIPTION_PREFIX = "Unnamed repository"
_README_NAMES = ("readme.md", "readme.markdown", "readme.mdown", "readme", "readme.txt")
_READ_SERVICES = ("git-upload-pack",)
_PUSH_SERVICE = "git-receive-pack"


class ForgeService:
    def __init__(self, root: Path, *, base_url: str, web_base_url: str | None = None,
                 anonymous_read: bool = False, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
                 max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES, committer: Author | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.urls = ForgeUrls(base_url.rstrip("/"), (web_base_url or base_url).rstrip("/"))
        self.anonymous_read = anonymous_read
        self.max_blob_bytes = max_blob_bytes
        self.max_raw_bytes = max_raw_bytes
        self.committer = committer or Author()
        self.git = git_binary()
        self._listeners: list[PushListener] = []

    # -- listeners ---------------------------------------------------------------------------
    def add_push_listener(self, fn: PushListener) -> None:
        """Call ``fn(org, repo, ref_updates)`` after every push or portal commit that moved refs."""
        self._listeners.append(fn)

    def _notify(self, org: str, repo: str, updates: list[RefUpdate]) -> None:
        if not updates:
            return
        logs.event(log, "forge.refs_updated", org=org, repo=repo,
                   refs=[u.ref for u in updates])
        for fn in list(self._listeners):
            try:
                fn(org, repo, list(updates))
            except Exception:  # one listener's bug must not hide the push from the others
                log.exception("forge.listener_failed", extra={"fields": {"org": org, "repo": repo}})

    # -- locating ----------------------------------------------------------------------------
    def _path(self, org: str, repo: str) -> Path:
        check_name(org, "org")
        check_name(repo, "repository")
        path = self.root / org / f"{repo}.git"
        # Defence in depth: a symlinked org directory must not lead outside the root either.
        if path.exists() and path.resolve().parent.parent != self.root:
            raise NotFoundError(f"repository {org}/{repo} not found")
        return path

    def _open(self, org: str, repo: str) -> BareRepository:
        bare = BareRepository(self._path(org, repo))
        if not bare.exists():
            raise NotFoundError(f"repository {org}/{repo} not found; create it with POST "
                                "/api/forge/repositories")
        return bare

    def exists(self, org: str, repo: str) -> bool:
        try:
            return BareRepository(self._path(org, repo)).exists()
        except (InputError, NotFoundError):
            return False

    # -- URLs --------------------------------------------------------------------------------
    def clone_url(self, org: str, repo: str) -> str:
        return self.urls.clone_url(org, repo)

    def web_url(self, org: str, repo: str) -> str:
        return self.urls.web_url(org, repo)

    def raw_url(self, org: str, repo: str, ref: str, path: str) -> str:
        """``{baseUrl}/git/<org>/<repo>/raw/<ref>/<path>``: what catalog ``url`` locations use."""
        return self.urls.raw_url(org, repo, ref, path)

    def parse_raw_url(self, url: str) -> RawLocation | None:
        """The repository and ``<ref>/<path>`` a raw or web file URL of this forge points at, or
        None if the URL is not ours."""
        return self.urls.parse(url)

    def read_url(self, url: str) -> bytes | None:
        """The file a raw or web file URL of this forge names, read without HTTP; None if the URL
        is not ours. Raises NotFoundError / InputError like :meth:`read_file`."""
        loc = self.parse_raw_url(url)
        if loc is None:
            return None
        ref, _commit, path = self.split_ref_path(loc.org, loc.repo, loc.ref_and_path)
        return self.read_file(loc.org, loc.repo, ref, path)

    # -- repositories ------------------------------------------------------------------------
    def list_repositories(self, org: str | None = None) -> list[Repository]:
        """Every repository (of ``org``), sorted by org then name."""
        orgs = [org] if org else sorted(p.name for p in self.root.iterdir() if p.is_dir())
        found: list[Repository] = []
        for o in orgs:
            org_dir = self.root / check_name(o, "org") if org else self.root / o
            if not org_dir.is_dir():
                continue
            for entry in sorted(org_dir.iterdir()):
                name = entry.name.removesuffix(".git")
                if entry.name.endswith(".git") and self.exists(o, name):
                    found.append(self._describe(o, name, BareRepository(entry)))
        return found

    def get_repository(self, org: str, repo: str) -> Repository:
        return self._describe(org, repo, self._open(org, repo))

    def _describe(self, org: str, repo: str, bare: BareRepository) -> Repository:
        branch = bare.head_branch()
        tip = bare.refs().get(f"refs/heads/{branch}")
        last = bare.log(tip, skip=0, limit=1) if tip else []
        return Repository(
            org=org, name=repo, description=_read_description(bare.path), default_branch=branch,
            clone_url=self.clone_url(org, repo), web_url=self.web_url(org, repo),
            last_commit=last[0] if last else None, empty=tip is None,
        )

    def create_repository(self, org: str, name: str, description: str = "",
                          default_branch: str = "main", principal: Principal | None = None) -> Repository:
        """Create an empty bare repository. Raises InputError, or ConflictError if it exists."""
        path = self._path(org, name)
        description = description.strip()
        if len(description) > MAX_DESCRIPTION_LENGTH:
            raise InputError(f"description: longer than {MAX_DESCRIPTION_LENGTH} characters; shorten it")
        _check_branch(default_branch, "defaultBranch")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()  # atomic: of two concurrent creations exactly one gets here
        except FileExistsError:
            raise ConflictError(f"repository {org}/{name} already exists") from None
        try:
            init_bare(path, default_branch)
            (path / "description").write_text(description + "\n", encoding="utf-8")
        except (GitError, OSError):
            shutil.rmtree(path, ignore_errors=True)
            raise
        logs.event(log, "forge.repository_created", org=org, repo=name,
                   by=principal.subject if principal else None)
        return self.get_repository(org, name)

    # -- reading -----------------------------------------------------------------------------
    def refs(self, org: str, repo: str) -> Refs:
        bare = self._open(org, repo)
        all_refs = bare.refs()
        return Refs(
            default_branch=bare.head_branch(),
            branches={k.removeprefix("refs/heads/"): v for k, v in all_refs.items()
                      if k.startswith("refs/heads/")},
            tags={k.removeprefix("refs/tags/"): v for k, v in all_refs.items()
                  if k.startswith("refs/tags/")},
        )

    def resolve(self, org: str, repo: str, ref: str | None) -> tuple[str, str]:
        """``(ref, commit sha)`` for a branch, tag, ``HEAD``, full ref name or hex commit id
        (None means the default branch). Raises NotFoundError naming what was looked for."""
        bare = self._open(org, repo)
        found = self._resolve_in(bare, bare.refs(), ref or bare.head_branch())
        if found is None:
            raise NotFoundError(f"ref: {org}/{repo} has no branch, tag or commit {ref!r}"
                                + ("; the repository is empty, push a commit first"
                                   if not bare.refs() else ""))
        return (ref or bare.head_branch()), found

    def _resolve_in(self, bare: BareRepository, refs: Mapping[str, str], ref: str) -> str | None:
        if ref == "HEAD":
            ref = bare.head_branch()
        # Only names git itself listed (or hex ids) reach `rev-parse`: nothing user-typed can be
        # read as an option or a revision expression.
        for full in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
            if full.startswith("refs/") and full in refs:
                return bare.resolve_commit(full)
        if looks_like_sha(ref):
            return bare.resolve_commit(ref)
        return None

    def split_ref_path(self, org: str, repo: str, ref_and_path: str) -> tuple[str, str, str]:
        """Split ``<ref>/<path>`` where the ref itself may contain slashes (``feature/x/README.md``):
        the shortest leading part that names a ref wins (git forbids ``a`` and ``a/b`` both being
        branches, so at most one can). Returns ``(ref, commit, path)``."""
        cleaned = check_path(ref_and_path, "ref/path")
        if not cleaned:
            raise InputError("ref/path: a ref is required, as in <ref>/<path>")
        bare = self._open(org, repo)
        refs = bare.refs()
        segments = cleaned.split("/")
        for i in range(1, len(segments) + 1):
            ref = "/".join(segments[:i])
            sha = self._resolve_in(bare, refs, ref)
            if sha:
                return ref, sha, "/".join(segments[i:])
        raise NotFoundError(f"ref: {org}/{repo} has no branch, tag or commit at the start of "
                            f"{cleaned!r}")

    def tree(self, org: str, repo: str, ref: str | None, path: str = "") -> Tree:
        """The entries of the directory ``path`` at ``ref``; NotFoundError if absent, InputError
        if ``path`` is a file."""
        path = check_path(path)
        ref, commit = self.resolve(org, repo, ref)
        bare = self._open(org, repo)
        obj = bare.object_at(commit, path)
        if obj is None:
            raise NotFoundError(f"path: {path!r} does not exist at {ref} in {org}/{repo}")
        if obj[1] != "tree":
            raise InputError(f"path: {path!r} is a file, not a directory; read it as a blob")
        return Tree(ref=ref, commit=commit, path=path, entries=tuple(bare.list_tree(obj[0], path)))

    def blob(self, org: str, repo: str, ref: str | None, path: str,
             max_bytes: int | None = None) -> Blob:
        """A file at ``ref``. Content is None (``truncated``) above ``max_bytes`` (default
        ``max_blob_bytes``); ``binary`` follows git's rule: a NUL byte in the first 8000 bytes."""
        path = check_path(path)
        if not path:
            raise InputError("path: required; name a file")
        cap = self.max_blob_bytes if max_bytes is None else max_bytes
        ref, commit = self.resolve(org, repo, ref)
        bare = self._open(org, repo)
        obj = bare.object_at(commit, path)
        if obj is None:
            raise NotFoundError(f"path: {path!r} does not exist at {ref} in {org}/{repo}")
        sha, kind, size = obj
        if kind != "blob":
            raise InputError(f"path: {path!r} is a {'directory' if kind == 'tree' else kind}, not a file")
        if size > cap:
            return Blob(ref=ref, commit=commit, path=path, sha=sha, size=size, binary=False,
                        truncated=True, content=None)
        content = bare.read_blob(sha)
        return Blob(ref=ref, commit=commit, path=path, sha=sha, size=size,
                    binary=b"\0" in content[:8000], truncated=False, content=content)

    def read_file(self, org: str, repo: str, ref: str | None, path: str) -> bytes:
        """A file's bytes (up to ``max_raw_bytes``); what the catalog reads its own host with."""
        blob = self.blob(org, repo, ref, path, max_bytes=self.max_raw_bytes)
        if blob.content is None:
            raise InputError(f"path: {path!r} is {blob.size} bytes, over the {self.max_raw_bytes}-byte "
                             "limit for raw reads; clone the repository instead")
        return blob.content

    def export(self, org: str, repo: str, ref: str | None, dest: Path, subdir: str | None = None, *,
               max_bytes: int = DEFAULT_MAX_EXPORT_BYTES, max_files: int = DEFAULT_MAX_EXPORT_FILES) -> str:
        """Write the tree at ``ref`` (or its directory ``subdir``) into ``dest``, which must be
        absent or empty; return the commit exported. Files keep their executable bit, symbolic
        links are kept only when they point inside ``dest``. Raises NotFoundError (repository,
        ref or ``subdir`` absent), InputError (``subdir`` is a file, ``dest`` not empty, the tree
        over ``max_bytes``/``max_files`` or refused by the safe extraction); ``dest`` is removed
        again on any failure."""
        path = check_path(subdir or "", "subdir")
        ref, commit = self.resolve(org, repo, ref)
        bare = self._open(org, repo)
        if path:
            obj = bare.object_at(commit, path)
            if obj is None:
                raise NotFoundError(f"subdir: {path!r} does not exist at {ref} in {org}/{repo}")
            if obj[1] != "tree":
                raise InputError(f"subdir: {path!r} is a file at {ref} in {org}/{repo}, not a directory")
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise InputError(f"dest: {dest} exists and is not an empty directory")
        try:
            stats = archive_tree(bare.path, f"{commit}:{path}" if path else commit, dest,
                                 max_bytes=max_bytes, max_files=max_files)
        except UnsafeArchiveError as e:
            shutil.rmtree(dest, ignore_errors=True)
            raise InputError(f"exporting {org}/{repo} at {ref}"
                             + (f" ({path})" if path else "") + f": {e.message}") from None
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        logs.event(log, "forge.exported", org=org, repo=repo, ref=ref, commit=commit, subdir=path,
                   files=stats.files, bytes=stats.bytes)
        return commit

    def readme(self, org: str, repo: str, ref: str | None = None) -> Readme | None:
        """The README at the root of ``ref`` as raw markdown (pages render it), or None."""
        root = self.tree(org, repo, ref, "")
        by_name = {e.name.lower(): e for e in root.entries if e.kind == "blob"}
        for candidate in _README_NAMES:
            entry = by_name.get(candidate)
            if entry:
                blob = self.blob(org, repo, root.commit, entry.path)
                text = (blob.content or b"").decode("utf-8", "replace")
                return Readme(ref=root.ref, commit=root.commit, path=entry.path, markdown=text)
        return None

    def commits(self, org: str, repo: str, ref: str | None = None, limit: int = 20,
                cursor: str | None = None, path: str = "") -> CommitPage:
        """Commits reachable from ``ref``, newest first. The cursor pins the starting commit, so
        pages stay consistent while others push."""
        if not 1 <= limit <= MAX_COMMITS_PAGE:
            raise InputError(f"limit: must be between 1 and {MAX_COMMITS_PAGE}")
        path = check_path(path)
        if cursor:
            head, skip = decode_cursor(cursor)
            bare = self._open(org, repo)
            if bare.resolve_commit(head) != head:
                raise InputError("cursor: points at a commit this repository does not have")
        else:
            _ref, head = self.resolve(org, repo, ref)
            skip, bare = 0, self._open(org, repo)
        found = bare.log(head, skip=skip, limit=limit + 1, path=path)
        more = len(found) > limit
        return CommitPage(commits=tuple(found[:limit]),
                          next_cursor=encode_cursor(head, skip + limit) if more else None)

    def commit(self, org: str, repo: str, sha: str) -> Commit:
        if not looks_like_sha(sha):
            raise InputError(f"sha: {sha[:80]!r} is not a commit id")
        _ref, full = self.resolve(org, repo, sha)
        return self._open(org, repo).log(full, skip=0, limit=1)[0]

    # -- writing -----------------------------------------------------------------------------
    def push_directory(self, org: str, repo: str, directory: Path, message: str,
                       author: Author | None = None, branch: str | None = None) -> RefUpdate:
        """Commit the content of ``directory`` as the new tree of ``branch`` (default branch when
        None), on top of its current tip (a new branch: of the default branch's tip; an empty
        repository: a first commit), then notify push listeners (in this thread).

        Used by the scaffolder's ``publish:greenroom``. Raises NotFoundError for an unknown
        repository, InputError for a bad directory or branch, ConflictError if the branch moved
        while committing."""
        bare = self._open(org, repo)
        if not directory.is_dir():
            raise InputError(f"directory: {directory} is not a directory")
        if not message.strip():
            raise InputError("message: required; describe the commit")
        branch = branch or bare.head_branch()
        _check_branch(branch, "branch")
        ref = f"refs/heads/{branch}"
        refs = bare.refs()
        parent = refs.get(ref)
        # A new branch starts from the default branch's tip, so the two share history.
        base = parent or refs.get(f"refs/heads/{bare.head_branch()}")
        try:
            sha = bare.commit_directory(directory.resolve(), ref, base, parent, message,
                                        author or self.committer, self.committer)
        except GitError as e:
            if "update-ref" in str(e) or "cannot lock ref" in e.stderr:
                raise ConflictError(f"branch {branch} of {org}/{repo} moved while committing; "
                                    "retry") from None
            raise
        update = RefUpdate(ref=ref, old=parent, new=sha)
        self._notify(org, repo, [update])
        return update

    # -- smart HTTP --------------------------------------------------------------------------
    def smart_http(self, org: str, repo: str, service_path: str, method: str, query_service: str | None,
                   principal: Principal | None, headers: Mapping[str, str],
                   remote_addr: str | None) -> CgiResponse:
        """Authorise one smart-HTTP request and return the ASGI response that runs
        ``git http-backend`` for it. Only the smart protocol is served (``info/refs?service=``,
        ``git-upload-pack``, ``git-receive-pack``). Raises AuthenticationError (the route adds
        ``WWW-Authenticate``), NotFoundError or InputError."""
        if method == "GET" and service_path == "info/refs":
            service = query_service or ""
            if service not in (*_READ_SERVICES, _PUSH_SERVICE):
                raise NotFoundError("only git's smart HTTP protocol is served; use git 1.6.6 or later")
        elif method == "POST" and service_path in (*_READ_SERVICES, _PUSH_SERVICE):
            service = service_path
        else:
            raise NotFoundError(f"{method} {service_path!r}: not a git smart HTTP endpoint")
        pushing = service == _PUSH_SERVICE
        if principal is None and (pushing or not self.anonymous_read):
            raise AuthenticationError(
                ("pushing" if pushing else "reading") + f" {org}/{repo} needs credentials: use an "
                "access token as the password, or send 'Authorization: Bearer <token>'")
        bare = self._open(org, repo)
        protocol = headers.get("git-protocol")
        request = CgiRequest(
            project_root=self.root,
            path_info=f"/{org}/{repo}.git/{service_path}",
            method=method,
            query_string=f"service={service}" if service_path == "info/refs" else "",
            content_type=headers.get("content-type"),
            content_length=headers.get("content-length"),
            content_encoding=headers.get("content-encoding"),
            # The protocol header is only "version=2"-like: anything else is dropped, not passed on.
            git_protocol=protocol if protocol and _is_simple(protocol) else None,
            remote_user=principal.subject if principal else None,
            remote_addr=remote_addr,
        )
        on_finish = None
        if pushing and method == "POST":
            before = bare.refs()

            async def on_finish(returncode: int) -> None:
                # Whatever the exit code: refs that moved have moved, and listeners must know.
                await anyio.to_thread.run_sync(self._after_push, org, repo, bare, before)

        return CgiResponse(request, http_backend_argv(self.git), on_finish)

    def _after_push(self, org: str, repo: str, bare: BareRepository, before: Mapping[str, str]) -> None:
        after = bare.refs()
        updates = [RefUpdate(ref=name, old=before.get(name), new=after.get(name))
                   for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]
        self._notify(org, repo, updates)


def _read_description(path: Path) -> str:
    try:
        text = (path / "description").read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return "" if text.startswith(_DEFAULT_DESCRIPTION_PREFIX) else text


def _check_branch(branch: str, field_name: str) -> None:
    if not is_valid_ref_name(f"refs/heads/{branch}") or branch.startswith("-") or branch == "HEAD":
        raise InputError(f"{field_name}: {branch[:80]!r} is not a valid branch name; use something "
                         "like 'main' or 'release/1.x'")


def _is_simple(value: str) -> bool:
    return len(value) < 200 and all(c.isalnum() or c in "=:._-" for c in value)

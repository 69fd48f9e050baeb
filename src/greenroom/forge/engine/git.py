"""Git plumbing on one bare repository, through ``git`` subprocesses.

Model: a :class:`BareRepository` is a directory ``<name>.git`` that git owns; we never write into
it except through git commands. Every command is an argument list (never a shell string) and no
argument built from user input can be read as an option: refs are checked with
``git check-ref-format`` (and may not start with ``-``) before use, objects are addressed by their
hexadecimal id, and paths go after ``--`` or inside ``<sha>:<path>`` requests on stdin.

Git runs with a fixed environment: no system or global configuration (so an operator's
``~/.gitconfig`` cannot change what the portal serves), no terminal prompts, the C locale.

Failure behaviour: a command that exits non-zero raises :class:`GitError` with git's stderr
(which never contains a secret: we pass none to git). Reads of absent objects return None.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from greenroom.forge.model import Author, Commit, TreeEntry

GIT_TIMEOUT_SECONDS = 120
# Field separator in `git log` output; commit messages are the last field so may contain it.
_SEP = "\x1f"
_LOG_FORMAT = _SEP.join(["%H", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%B"])


class GitError(Exception):
    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"git {args[0] if args else ''} exited {returncode}: {stderr.strip()[:500]}")
        self.returncode = returncode
        self.stderr = stderr


def git_binary() -> str:
    found = shutil.which("git")
    if not found:
        raise RuntimeError("git is not installed or not on PATH; install git to use the forge")
    return found


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment a git subprocess sees."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "HOME": os.devnull,
    }
    if extra:
        env.update(extra)
    return env


def run_git(args: list[str], *, git_dir: Path | None = None, input: bytes | None = None,
            env: Mapping[str, str] | None = None, check: bool = True,
            cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    argv = [git_binary()]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    argv.extend(args)
    proc = subprocess.run(argv, input=input, capture_output=True, env=base_env(env),
                          timeout=GIT_TIMEOUT_SECONDS, check=False, cwd=cwd)
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc


def is_valid_ref_name(name: str) -> bool:
    """True if ``name`` is a well-formed ref name (``main``, ``feature/x``, ``refs/tags/v1``)."""
    if not name or name.startswith("-") or len(name) > 255:
        return False
    # check-ref-format takes no `--`; the leading-dash test above is what keeps this an operand.
    return run_git(["check-ref-format", "--allow-onelevel", name], check=False).returncode == 0


def init_bare(path: Path, default_branch: str) -> None:
    """Initialise an empty bare repository at ``path`` (which may exist and be empty)."""
    run_git(["init", "--quiet", "--bare", f"--initial-branch={default_branch}", "--", str(path)])
    for key, value in (
        ("http.receivepack", "true"),  # pushes over smart HTTP; the route checks who may push
        ("receive.fsckObjects", "true"),  # refuse malformed objects instead of storing them
        ("uploadpack.allowFilter", "true"),  # partial clones for big repositories
        ("core.logAllRefUpdates", "true"),  # a reflog, so a bad force-push can be undone
    ):
        run_git(["config", key, value], git_dir=path)


class BareRepository:
    """Read and write one bare repository. Methods take resolved, validated values."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _git(self, args: list[str], *, input: bytes | None = None,
             env: Mapping[str, str] | None = None, check: bool = True) -> bytes:
        return run_git(args, git_dir=self.path, input=input, env=env, check=check).stdout

    def exists(self) -> bool:
        return (self.path / "HEAD").is_file() and (self.path / "objects").is_dir()

    def head_branch(self) -> str:
        """The branch HEAD names (the default branch), even when it has no commit yet."""
        try:
            text = (self.path / "HEAD").read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        if text.startswith("ref: refs/heads/"):
            return text.removeprefix("ref: refs/heads/")
        out = self._git(["symbolic-ref", "--quiet", "--short", "HEAD"], check=False)
        return out.decode().strip() or "main"

    def refs(self) -> dict[str, str]:
        """Every ref (``refs/heads/main`` -> sha); peeled tags are not included."""
        out = self._git(["for-each-ref", "--format=%(objectname) %(refname)"]).decode()
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            if name:
                refs[name] = sha
        return refs

    def resolve_commit(self, rev: str) -> str | None:
        """The commit a full ref name or hex id points at, or None."""
        out = self._git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
                        check=False)
        sha = out.decode().strip()
        return sha or None

    def object_at(self, commit: str, path: str) -> tuple[str, str, int] | None:
        """``(sha, type, size)`` of the object at ``path`` in ``commit`` (root when path is "")."""
        request = f"{commit}:{path}\n".encode()
        out = self._git(["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
                        input=request).decode().strip()
        parts = out.split(" ")
        if len(parts) != 3 or parts[1] == "missing":
            return None
        return parts[0], parts[1], int(parts[2])

    def list_tree(self, tree_sha: str, prefix: str) -> list[TreeEntry]:
        """The entries of one tree object, directories first, then by name."""
        out = self._git(["ls-tree", "-z", "--long", "--end-of-options", tree_sha])
        entries: list[TreeEntry] = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_name = record.partition(b"\t")
            mode, kind, sha, size = meta.decode().split()
            name = raw_name.decode("utf-8", "surrogateescape")
            entries.append(TreeEntry(
                name=name,
                path=f"{prefix}/{name}" if prefix else name,
                kind="tree" if kind == "tree" else "commit" if kind == "commit" else "blob",
                mode=mode,
                sha=sha,
                size=int(size) if size.isdigit() else None,
            ))
        entries.sort(key=lambda e: (e.kind != "tree", e.name))
        return entries

    def read_blob(self, sha: str) -> bytes:
        return self._git(["cat-file", "blob", sha])

    def log(self, commit: str, *, skip: int, limit: int, path: str = "") -> list[Commit]:
        args = ["log", "-z", f"--format={_LOG_FORMAT}", f"--skip={skip}", f"--max-count={limit}",
                "--end-of-options", commit, "--"]
        if path:
            args.append(path)
        out = self._git(args).decode("utf-8", "replace")
        commits = []
        for record in out.split("\0"):
            if not record.strip():
                continue
            f = record.split(_SEP, 8)
            commits.append(Commit(
                sha=f[0], parents=tuple(f[1].split()), author_name=f[2], author_email=f[3],
                authored_at=f[4], committer_name=f[5], committer_email=f[6], committed_at=f[7],
                message=f[8].rstrip("\n"),
            ))
        return commits

    def commit_directory(self, directory: Path, branch_ref: str, parent: str | None,
                         expected: str | None, message: str, author: Author, committer: Author) -> str:
        """Commit the files of ``directory`` (honouring its ``.gitignore``) as the whole new tree
        of ``branch_ref``, with ``parent`` as parent commit (None for a root commit), and move the
        ref from ``expected`` (None: the ref must not exist yet).

        The ref is moved with compare-and-swap against ``expected``: if someone pushed in between,
        :class:`GitError` is raised and nothing is lost. Returns the new commit's id.
        """
        with tempfile.TemporaryDirectory(prefix="greenroom-index-") as tmp:
            # A private index: the bare repository has none, and concurrent commits must not share.
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            run_git([f"--git-dir={self.path}", f"--work-tree={directory}", "add", "--all", "--", "."],
                    env=env, cwd=directory)
            tree = self._git(["write-tree"], env=env).decode().strip()
        ident = {
            "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name, "GIT_COMMITTER_EMAIL": committer.email,
        }
        args = ["commit-tree", tree]
        if parent:
            args += ["-p", parent]
        args += ["-F", "-"]
        sha = self._git(args, input=message.encode(), env=ident).decode().strip()
        old = expected or "0" * len(sha)
        self._git(["update-ref", "-m", "greenroom: commit from directory", branch_ref, sha, old])
        return sha

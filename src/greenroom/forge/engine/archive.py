"""Exporting a tree of a bare repository into a plain directory: ``git archive`` streamed into a
tar reader that checks every member before anything reaches the disk.

Model. ``git archive --format=tar <tree>`` writes the tree (files with their executable bit,
symlinks, directories) to a pipe; :func:`extract_tar` reads that stream member by member
(``tarfile`` stream mode, so the archive is never held whole in memory or on disk) and writes each
member below ``dest``. Git honours the tree's ``.gitattributes`` (``export-ignore`` leaves files
out, ``export-subst`` expands placeholders), as GitHub's tarballs do.

Invariants. Nothing is written outside ``dest``:

* a member name that is absolute, has a ``..`` segment or resolves (through links already
  extracted) outside ``dest`` is refused;
* a symbolic link is kept only if its target, taken relative to the link's directory, stays
  inside ``dest``; hard links, devices and FIFOs are refused (git never produces them, so their
  presence means the stream is not what we asked git for);
* at most ``max_files`` members and ``max_bytes`` bytes of file content are accepted.

Failure behaviour. A refused member or a broken bound raises :class:`UnsafeArchiveError` naming
the member and the rule, and extraction stops at once; the caller removes ``dest``. A non-zero
exit of git raises ``GitError`` with its stderr. The pipe is always closed and git reaped
(killed after ``GIT_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from greenroom.forge.engine.git import GIT_TIMEOUT_SECONDS, GitError, base_env, git_binary

_MAX_TRAILER = 1024 * 1024


class UnsafeArchiveError(Exception):
    """A tar member broke one of the rules above; ``message`` says which and how."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ExtractStats:
    files: int
    bytes: int


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_member(member: tarfile.TarInfo, root: str) -> None:
    """Refuse a member that could write or point outside ``root`` (already a real path)."""
    name = member.name
    if name.startswith(("/", "\\")) or os.path.isabs(name):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise UnsafeArchiveError(f"archive member {name!r} climbs out with '..'")
    target = os.path.realpath(os.path.join(root, name))
    if not _inside(target, root):
        raise UnsafeArchiveError(f"archive member {name!r} would be written outside the export "
                                 "directory (through a symbolic link)")
    if member.issym():
        link = member.linkname
        if os.path.isabs(link):
            raise UnsafeArchiveError(f"archive member {name!r} is a symbolic link to the absolute "
                                     f"path {link!r}")
        resolved = os.path.realpath(os.path.join(root, os.path.dirname(name), link))
        if not _inside(resolved, root):
            raise UnsafeArchiveError(f"archive member {name!r} is a symbolic link pointing outside "
                                     f"the export directory ({link!r})")
    elif member.islnk():
        raise UnsafeArchiveError(f"archive member {name!r} is a hard link; git archives have none")
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"archive member {name!r} is a device or FIFO; refusing it")


def extract_tar(stream: IO[bytes], dest: Path, *, max_bytes: int, max_files: int) -> ExtractStats:
    """Extract the tar ``stream`` into ``dest`` (created if absent), checking every member first.

    Returns what was written; raises :class:`UnsafeArchiveError` on the first refused member or
    when ``max_files`` members / ``max_bytes`` content bytes would be exceeded."""
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    files = total = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if member.name in (".", "./", ""):
                continue  # git archive's pax header and the root entry say nothing to extract
            files += 1
            if files > max_files:
                raise UnsafeArchiveError(f"the archive has more than {max_files} entries")
            if member.isfile():
                total += member.size
                if total > max_bytes:
                    raise UnsafeArchiveError(f"the archive holds more than {max_bytes} bytes of files")
            _check_member(member, root)
            # Our checks ran first; the stdlib "data" filter adds its own (and drops set-uid bits,
            # owners and group/other write), so one missed case in either still cannot escape.
            try:
                tar.extract(member, root, set_attrs=True, filter="data")
            except tarfile.FilterError as exc:
                raise UnsafeArchiveError(f"archive member {member.name!r} refused: {exc}") from None
    return ExtractStats(files=files, bytes=total)


def archive_tree(git_dir: Path, tree_ish: str, dest: Path, *, max_bytes: int,
                 max_files: int) -> ExtractStats:
    """Run ``git archive`` for ``tree_ish`` (a hex commit id, optionally ``<id>:<path>``: never
    user text that could read as an option) in ``git_dir`` and extract it into ``dest``."""
    argv = [git_binary(), f"--git-dir={git_dir}", "archive", "--format=tar", tree_ish]
    # stderr goes to a file: a pipe nobody reads while we read stdout could fill and stall git.
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                env=base_env())
        timer = threading.Timer(GIT_TIMEOUT_SECONDS, proc.kill)
        timer.start()
        unreadable: tarfile.TarError | None = None
        stats = ExtractStats(0, 0)
        try:
            assert proc.stdout is not None
            try:
                stats = extract_tar(proc.stdout, dest, max_bytes=max_bytes, max_files=max_files)
                # tar ends with zero padding that the reader may leave in the pipe: drain it so
                # git can exit (bounded: anything large after the end is not padding).
                if len(proc.stdout.read(_MAX_TRAILER + 1)) > _MAX_TRAILER:
                    raise UnsafeArchiveError("git archive wrote data after the end of the archive")
            except tarfile.TarError as exc:
                unreadable = exc  # git's own failure (below) explains an empty stream better
            finally:
                proc.stdout.close()  # a reader that stopped early: git gets SIGPIPE, not a hang
                proc.wait()
        finally:
            timer.cancel()
        if proc.returncode != 0:  # also: killed after the timeout (-9)
            err.seek(0)
            raise GitError(["archive"], proc.returncode, err.read(4000).decode("utf-8", "replace"))
        if unreadable is not None:
            raise UnsafeArchiveError(f"git archive produced an unreadable tar stream: {unreadable}")
        return stats

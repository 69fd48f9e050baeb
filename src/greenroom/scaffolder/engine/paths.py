"""Path safety for actions: nothing is read outside the template's repository, nothing is written
outside the task workspace.

Every path an action derives from input (``targetPath``, rendered skeleton file names, ``url``) goes
through ``safe_child``, which refuses absolute paths and anything whose *real* path (symlinks
resolved) leaves the root. Skeleton trees are walked with ``walk_tree``, which refuses symlinks that
point outside the tree's root instead of following them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from greenroom.core.errors import InputError, NotAllowedError
from greenroom.scaffolder.model import TemplateInfo


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def safe_child(root: Path, relative: str, what: str = "path") -> Path:
    """``root/relative`` if it stays inside ``root`` (after resolving symlinks), else InputError."""
    if not isinstance(relative, str):
        raise InputError(f"{what} must be a string, got {relative!r}")
    if os.path.isabs(relative) or relative.startswith("\\") or re.match(r"^[A-Za-z]:", relative):
        raise InputError(f"{what} {relative!r} is absolute; use a path relative to the workspace")
    root_real = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(root_real, relative))
    if not _inside(candidate, root_real):
        raise InputError(
            f"{what} {relative!r} is not allowed: relative paths must not refer to a directory "
            "outside their parent (no `..` past the root, no symlinks pointing out)"
        )
    return Path(os.path.join(root_real, os.path.normpath(relative)))


def is_absolute_url(url: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url))


def resolve_source(info: TemplateInfo, url: str) -> Path:
    """Local directory/file a relative fetch ``url`` points at (``NotAllowedError`` if it leaves
    the template's repository root; ``InputError`` if the template has no local base)."""
    if info.base_dir is None:
        raise InputError(
            f"cannot fetch {url!r}: the template's location is not a local directory and no URL "
            "reader is configured"
        )
    root = info.repository_root or info.base_dir
    if os.path.isabs(url):
        raise NotAllowedError(f"fetch url {url!r} is absolute; use a path relative to template.yaml")
    target = os.path.realpath(os.path.join(info.base_dir, url))
    if not _inside(target, os.path.realpath(root)):
        raise NotAllowedError(
            f"fetch url {url!r} resolves outside the template's repository ({root}): relative path "
            "is not allowed to refer to a directory outside its parent"
        )
    return Path(target)


def walk_tree(root: Path) -> Iterator[tuple[str, Path, bool]]:
    """Yield ``(relative posix path, absolute path, is_dir)`` under ``root`` (sorted, dot files
    included). Directories first appear before their contents. A symlink whose target leaves
    ``root`` raises ``NotAllowedError``; symlinks inside are followed for files."""
    root_real = os.path.realpath(root)
    for current, dirs, files in os.walk(root_real):
        dirs.sort()
        rel_dir = os.path.relpath(current, root_real)
        for name in list(dirs):
            full = os.path.join(current, name)
            if os.path.islink(full) and not _inside(os.path.realpath(full), root_real):
                raise NotAllowedError(f"skeleton entry {name!r} is a symlink pointing outside the template")
            if os.path.islink(full):
                dirs.remove(name)  # never follow directory links (loops); their files are elsewhere
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            yield rel.replace(os.sep, "/"), Path(full), True
        for name in sorted(files):
            full = os.path.join(current, name)
            if os.path.islink(full):
                target = os.path.realpath(full)
                if not _inside(target, root_real):
                    raise NotAllowedError(
                        f"skeleton file {name!r} is a symlink pointing outside the template; refusing it"
                    )
                if not os.path.isfile(target):
                    continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            yield rel.replace(os.sep, "/"), Path(full), False


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "{":
            end = pattern.find("}", i)
            if end > i:
                out += "(?:" + "|".join(re.escape(p) for p in pattern[i + 1 : end].split(",")) + ")"
                i = end + 1
                continue
            out += re.escape(c)
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def glob_match(pattern: str, path: str) -> bool:
    """Globby-like match (dot files included). A pattern ending in ``/`` names a directory and
    matches everything below it too."""
    pattern = pattern.removeprefix("./")
    if pattern.endswith("/"):
        base = pattern.rstrip("/")
        return bool(_glob_regex(base).match(path)) or any(
            _glob_regex(base).match(path[: i]) for i in range(len(path)) if path[i] == "/"
        )
    return bool(_glob_regex(pattern).match(path))

"""Where built docs sites live: ``DocsStorage`` and the local-filesystem implementation.

Layout (as Backstage's publishers): ``<root>/<namespace>/<kind>/<name>/<file>``, triple lower case.
A site is replaced as a whole: ``put_site`` writes the new tree beside the old one and swaps it in,
so a reader sees either the old or the new site, never half of each.

Paths from requests are untrusted: :func:`safe_relpath` refuses absolute paths, ``..``, NUL bytes
and backslashes before any storage is touched, and ``LocalStorage`` checks the resolved file is
still below the site root (which also defeats symlinks).
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Protocol

from greenroom.core.errors import InputError, NotFoundError
from greenroom.techdocs.model import EntityTriple

_TYPES = {
    ".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8", ".json": "application/json",
    ".svg": "image/svg+xml", ".xml": "application/xml", ".txt": "text/plain; charset=utf-8",
    ".map": "application/json", ".woff2": "font/woff2", ".woff": "font/woff", ".png": "image/png",
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".ico": "image/x-icon",
    ".gz": "application/gzip",
}


def content_type(path: str) -> str:
    ext = PurePosixPath(path).suffix.lower()
    return _TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def safe_relpath(path: str) -> str:
    """A normalized relative POSIX path inside a site, or :class:`InputError`."""
    if "\x00" in path or "\\" in path:
        raise InputError(f"docs path {path!r} contains a forbidden character")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if path.startswith("/") or any(p == ".." for p in parts):
        raise InputError(f"docs path {path!r} must be relative and stay inside the site")
    return "/".join(parts)


class DocsStorage(Protocol):
    """Stores whole built sites per entity and serves their files."""

    def put_site(self, triple: EntityTriple, site_dir: Path) -> list[str]:
        """Replace the entity's site with the files under ``site_dir``; returns the stored paths."""
        ...

    def get_file(self, triple: EntityTriple, path: str) -> tuple[bytes, str]:
        """The file's bytes and content type; :class:`NotFoundError` if absent, ``InputError`` if
        the path escapes the site."""
        ...

    def has_site(self, triple: EntityTriple) -> bool:
        """True when a site with ``index.html`` is stored for the entity."""
        ...

    def delete(self, triple: EntityTriple) -> None:
        """Remove the entity's site; no error if there is none."""
        ...


def site_files(site_dir: Path) -> list[str]:
    return sorted(p.relative_to(site_dir).as_posix() for p in site_dir.rglob("*") if p.is_file())


class LocalStorage:
    """Sites on the local filesystem under ``root`` (default ``$GREENROOM_HOME/techdocs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _site(self, triple: EntityTriple) -> Path:
        return self.root / triple.namespace / triple.kind / triple.name

    def put_site(self, triple: EntityTriple, site_dir: Path) -> list[str]:
        target = self._site(triple)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{triple.name}.{uuid.uuid4().hex[:8]}.new"
        shutil.copytree(site_dir, staging, symlinks=False)
        old = target.parent / f".{triple.name}.{uuid.uuid4().hex[:8]}.old"
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
        return site_files(target)

    def get_file(self, triple: EntityTriple, path: str) -> tuple[bytes, str]:
        rel = safe_relpath(path)
        site = self._site(triple)
        candidate = (site / rel).resolve()
        if not candidate.is_relative_to(site.resolve()):
            raise InputError(f"docs path {path!r} must stay inside the site")
        try:
            if candidate.is_dir():
                candidate = candidate / "index.html"
                rel = f"{rel}/index.html".lstrip("/")
            found = candidate.is_file()
        except OSError:  # e.g. a name longer than the file system allows: no such file either
            found = False
        if not found:
            raise NotFoundError(f"No file {rel[:200]} in the docs of {triple.ref}")
        return candidate.read_bytes(), content_type(rel)

    def has_site(self, triple: EntityTriple) -> bool:
        return (self._site(triple) / "index.html").is_file()

    def delete(self, triple: EntityTriple) -> None:
        shutil.rmtree(self._site(triple), ignore_errors=True)

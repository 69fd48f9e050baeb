"""Domain types of the built-in git host, and the validation of every name and path a caller sends.

Nothing here touches the disk or git. Validation lives here so that every entry point (REST API,
smart HTTP, raw file URLs, the scaffolder's publish action) refuses the same inputs with the same
message: a name that could leave ``$GREENROOM_HOME/git`` or a path that could leave a tree never
reaches a subprocess.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from greenroom.core.errors import InputError

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
MAX_NAME_LENGTH = 100
MAX_PATH_LENGTH = 4096
MAX_DESCRIPTION_LENGTH = 500
ZERO_SHA = "0" * 40
_HEX = re.compile(r"[0-9a-f]{7,64}")
# Control characters (including NUL and newline) never belong in a path we hand to git: a newline
# would split a `cat-file --batch` request in two.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(value: str, field_name: str) -> str:
    """Return ``value`` if it is a valid organisation or repository name, else raise InputError.

    Names are one path segment on disk (``<org>/<repo>.git``), so they must not contain ``/``,
    ``..`` or start with a dot, and a repository name must not end in ``.git`` (the suffix is
    added on disk and in clone URLs; ``x.git.git`` would be a second spelling of the same thing).
    """
    hint = ("use lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, "
            f"at most {MAX_NAME_LENGTH} characters")
    if not isinstance(value, str) or not value:
        raise InputError(f"{field_name}: required; {hint}")
    if len(value) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(value):
        raise InputError(f"{field_name}: {value[:120]!r} is not a valid name; {hint}")
    if ".." in value:
        raise InputError(f"{field_name}: {value!r} must not contain '..'; {hint}")
    if value.endswith((".git", ".lock")):
        raise InputError(
            f"{field_name}: {value!r} must not end in '.git' or '.lock'; drop the suffix "
            "(clone URLs add '.git' themselves)"
        )
    return value


def check_path(value: str, field_name: str = "path") -> str:
    """Normalise a path inside a repository's tree, refusing anything that could escape it.

    Leading and trailing slashes are dropped; empty segments (``a//b``), ``.`` and ``..`` (also
    when they arrived percent-encoded: the server decodes before we see them) and control
    characters are refused. Returns ``""`` for the root.
    """
    if len(value) > MAX_PATH_LENGTH:
        raise InputError(f"{field_name}: longer than {MAX_PATH_LENGTH} characters")
    if _CONTROL.search(value):
        raise InputError(f"{field_name}: {value[:120]!r} contains a control character")
    trimmed = value.strip("/")
    if not trimmed:
        return ""
    parts = trimmed.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InputError(
                f"{field_name}: {value[:120]!r} is not a plain path inside the repository; "
                "remove '.', '..' and empty segments"
            )
    return "/".join(parts)


def looks_like_sha(value: str) -> bool:
    """A full or abbreviated lowercase hexadecimal object id."""
    return bool(_HEX.fullmatch(value))


@dataclass(frozen=True)
class Author:
    """Who a commit made by the portal is attributed to."""

    name: str = "Greenroom"
    email: str = "greenroom@localhost"


@dataclass(frozen=True)
class Commit:
    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    authored_at: str  # ISO 8601 with offset, as git prints it
    committer_name: str
    committer_email: str
    committed_at: str
    message: str

    @property
    def summary(self) -> str:
        """The first line of the message."""
        return self.message.split("\n", 1)[0]


@dataclass(frozen=True)
class Repository:
    org: str
    name: str
    description: str
    default_branch: str
    clone_url: str
    web_url: str
    last_commit: Commit | None
    empty: bool


EntryKind = Literal["blob", "tree", "commit"]


@dataclass(frozen=True)
class TreeEntry:
    name: str
    path: str
    kind: EntryKind  # "commit" is a submodule link
    mode: str
    sha: str
    size: int | None  # None for trees and submodules


@dataclass(frozen=True)
class Tree:
    ref: str
    commit: str
    path: str
    entries: tuple[TreeEntry, ...]


@dataclass(frozen=True)
class Blob:
    ref: str
    commit: str
    path: str
    sha: str
    size: int
    binary: bool
    truncated: bool  # True when size exceeds the cap: content is then None
    content: bytes | None


@dataclass(frozen=True)
class Readme:
    ref: str
    commit: str
    path: str
    markdown: str


@dataclass(frozen=True)
class CommitPage:
    commits: tuple[Commit, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class Refs:
    default_branch: str
    branches: dict[str, str] = field(default_factory=dict)  # short name -> sha
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefUpdate:
    """One ref changed by a push: ``old`` is None when it was created, ``new`` when deleted."""

    ref: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class RawLocation:
    """What a raw file URL of this forge points at."""

    org: str
    repo: str
    ref_and_path: str


@dataclass(frozen=True)
class ForgeUrls:
    """The forge's public URLs. ``base_url`` is the backend's (git and raw files live under
    ``/git``), ``web_base_url`` the web app's (pages live under ``/forge``); no trailing slash."""

    base_url: str
    web_base_url: str

    def clone_url(self, org: str, repo: str) -> str:
        return f"{self.base_url}/git/{org}/{repo}.git"

    def web_url(self, org: str, repo: str) -> str:
        return f"{self.web_base_url}/forge/{org}/{repo}"

    def raw_url(self, org: str, repo: str, ref: str, path: str) -> str:
        return f"{self.base_url}/git/{org}/{repo}/raw/{quote(ref)}/{quote(path)}"

    def parse(self, url: str) -> RawLocation | None:
        """What a raw URL (``{base}/git/<org>/<repo>/raw/<ref>/<path>``) or a web file URL
        (``{web}/forge/<org>/<repo>/blob/<ref>/<path>``) points at; None for any other URL."""
        parts = urlsplit(url)
        for base, prefix, marker in ((self.base_url, "/git/", "raw"),
                                     (self.web_base_url, "/forge/", "blob")):
            b = urlsplit(base)
            if (parts.scheme, parts.netloc.lower()) != (b.scheme, b.netloc.lower()):
                continue
            start = b.path.rstrip("/") + prefix
            if not parts.path.startswith(start):
                continue
            segments = parts.path[len(start):].split("/", 3)
            if len(segments) == 4 and segments[2] == marker:
                return RawLocation(unquote(segments[0]), unquote(segments[1]), unquote(segments[3]))
        return None


def encode_cursor(head: str, skip: int) -> str:
    """An opaque commit-log cursor: the starting commit (pinned) and how many to skip."""
    return base64.urlsafe_b64encode(f"{head}:{skip}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        head, _, skip = raw.partition(":")
        if looks_like_sha(head) and skip.isdigit():
            return head, int(skip)
    except (binascii.Error, ValueError):  # ValueError: not ASCII, or not UTF-8 once decoded
        pass
    raise InputError("cursor: not a cursor this API returned; start again without it")


PushListener = Callable[[str, str, list[RefUpdate]], None]
"""Called after refs changed (a push, or a commit made by the portal) with
``(org, repo, ref_updates)``. Runs in a worker thread; an exception is logged and ignored."""

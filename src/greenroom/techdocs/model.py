"""TechDocs domain types and the ports other contexts provide. No I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

MANAGED_BY_LOCATION = "backstage.io/managed-by-location"
TECHDOCS_REF = "backstage.io/techdocs-ref"
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


class EntityPort(Protocol):
    """What TechDocs needs from the catalog."""

    def get_entity(self, ref: str) -> dict[str, Any] | None:
        """The full Backstage entity for ``kind:namespace/name`` (case-insensitive), or None."""
        ...


class BuildStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class EntityTriple:
    """``namespace/kind/name`` as used in storage paths and URLs; always lower case."""

    namespace: str
    kind: str
    name: str

    def __post_init__(self) -> None:
        for label, part in (("namespace", self.namespace), ("kind", self.kind), ("name", self.name)):
            if not _PART.match(part):
                raise ValueError(f"entity {label} {part!r} is not a valid name")
        object.__setattr__(self, "namespace", self.namespace.lower())
        object.__setattr__(self, "kind", self.kind.lower())
        object.__setattr__(self, "name", self.name.lower())

    @classmethod
    def parse(cls, ref: str) -> EntityTriple:
        """``kind:namespace/name`` or ``kind:name`` (namespace ``default``)."""
        kind, sep, rest = ref.partition(":")
        if not sep:
            raise ValueError(f"entity ref {ref!r} needs a kind, such as component:default/{ref}")
        namespace, slash, name = rest.partition("/")
        if not slash:
            namespace, name = "default", rest
        return cls(namespace, kind, name)

    @classmethod
    def of_entity(cls, entity: dict[str, Any]) -> EntityTriple:
        meta = entity.get("metadata") or {}
        return cls(meta.get("namespace") or "default", str(entity.get("kind", "")), str(meta.get("name", "")))

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}"

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"


@dataclass(frozen=True)
class BrokenLink:
    page: str
    link: str
    kind: str = "page"


@dataclass
class BuildResult:
    """What one build produced. ``ok`` False means ``error`` says why and ``log`` shows how."""

    ok: bool
    log: str
    error: str | None = None
    broken_links: list[BrokenLink] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    site_name: str = ""


@dataclass(frozen=True)
class Freshness:
    """Last commit times (epoch seconds) of the docs folder and of the rest of the repository."""

    docs_changed_at: int | None
    code_changed_at: int | None

    @property
    def lag_days(self) -> int | None:
        """Days the docs trail the code (positive: docs older), None if unknown."""
        if self.docs_changed_at is None or self.code_changed_at is None:
            return None
        return (self.code_changed_at - self.docs_changed_at) // 86400

    def describe(self) -> str:
        lag = self.lag_days
        if lag is None:
            return "freshness unknown (docs are not in a git repository)"
        if lag > 0:
            return f"docs last changed {lag} days before the code"
        return "docs changed with or after the code"


@dataclass(frozen=True)
class TechDocsOptions:
    """Settings of the TechDocs context (integrator: from a `techdocs:` config section)."""

    build_timeout_s: float = 120.0
    memory_limit_mb: int = 1024
    max_attempts: int = 3
    lease_seconds: float = 300.0
    sync_min_interval_s: float = 60.0
    allowed_git_hosts: tuple[str, ...] = ()
    use_build_server: bool = True


@dataclass
class DocsPage:
    """What a portal page needs to show one docs page."""

    entity_ref: str
    path: str
    title: str
    site_name: str
    body_html: str
    nav: list[dict[str, Any]]
    toc: list[dict[str, Any]]
    build_status: str | None = None
    built_at: str | None = None
    freshness: str | None = None

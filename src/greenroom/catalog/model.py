"""Catalog domain types: entity refs, relations, processing results and the extension Protocols.

No I/O here. Names and rules follow Backstage's catalog model exactly (``@backstage/catalog-model``):
an entity ref is ``kind:namespace/name``, compared case-insensitively; the default namespace is
``default``; relation names are Backstage's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

DEFAULT_NAMESPACE = "default"

# Annotations Backstage sets on every entity it ingests.
ANNOTATION_LOCATION = "backstage.io/managed-by-location"
ANNOTATION_ORIGIN_LOCATION = "backstage.io/managed-by-origin-location"
ANNOTATION_ORPHAN = "backstage.io/orphan"
ANNOTATION_SOURCE_LOCATION = "backstage.io/source-location"
ANNOTATION_VIEW_URL = "backstage.io/view-url"
ANNOTATION_EDIT_URL = "backstage.io/edit-url"
ANNOTATION_TECHDOCS_REF = "backstage.io/techdocs-ref"

ERROR_TYPE = "backstage.io/catalog-processing"

# Relation pairs, both directions, as Backstage names them.
RELATION_PAIRS: tuple[tuple[str, str], ...] = (
    ("ownedBy", "ownerOf"),
    ("partOf", "hasPart"),
    ("providesApi", "apiProvidedBy"),
    ("consumesApi", "apiConsumedBy"),
    ("dependsOn", "dependencyOf"),
    ("parentOf", "childOf"),
    ("memberOf", "hasMember"),
)
RELATION_INVERSE: dict[str, str] = {a: b for a, b in RELATION_PAIRS} | {b: a for a, b in RELATION_PAIRS}


@dataclass(frozen=True, slots=True)
class EntityName:
    """A parsed, case-preserving entity reference."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.lower()}:{self.namespace.lower()}/{self.name.lower()}"

    @property
    def ref(self) -> str:
        """The canonical (lower-cased) ``kind:namespace/name`` string used as a key."""
        return str(self)


@dataclass(frozen=True, slots=True)
class Relation:
    """``source`` —type→ ``target``; both refs canonical strings."""

    source: str
    type: str
    target: str


@dataclass(slots=True)
class ProcessingProblem:
    """One problem found while reading or processing, destined for an entity's ``status.items``.

    ``file`` and ``line`` say where in the source it is (line 1-based, None when unknown),
    ``field`` is the dotted path inside the entity (``spec.owner``), ``entity_ref`` the entity it
    concerns (None: it concerns the location whose target failed). ``message`` is already the full
    person-facing sentence naming file, line, field and fix.
    """

    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    entity_ref: str | None = None
    name: str = "InputError"

    def as_status_item(self) -> dict[str, Any]:
        return {
            "type": ERROR_TYPE,
            "level": "error",
            "message": f"{self.name}: {self.message}",
            "error": {"name": self.name, "message": self.message},
        }


@dataclass(frozen=True, slots=True)
class LocationSpec:
    """Where entities are read from: ``type`` is ``file`` or ``url``; ``target`` an absolute path or URL."""

    type: Literal["file", "url"]
    target: str

    def __str__(self) -> str:
        return f"{self.type}:{self.target}"


@dataclass(slots=True)
class RawDocument:
    """One YAML document as read, before validation; ``line`` is where it starts (1-based)."""

    data: Any
    location: LocationSpec
    line: int


@dataclass(slots=True)
class ProcessedEntity:
    """An entity ready to store: validated, placeholders resolved, annotations set.

    ``entity`` has no ``relations`` and no ``status``; those are stitched on read.
    ``errors`` are problems of this entity that did not stop it from being stored (none today:
    an invalid entity is not stored, its problem goes to the location instead).
    """

    ref: str
    entity: dict[str, Any]
    relations: list[Relation]
    location: LocationSpec
    line: int
    errors: list[ProcessingProblem] = field(default_factory=list)


@dataclass(slots=True)
class ProcessingResult:
    """What reading one location produced. Never raises for bad input: problems are data."""

    entities: list[ProcessedEntity] = field(default_factory=list)
    locations: list[LocationSpec] = field(default_factory=list)
    problems: list[ProcessingProblem] = field(default_factory=list)
    # True when the target itself could not be read (missing file, refused host): entities
    # previously read from it must be kept, not orphaned.
    unreadable: bool = False


class ReadPolicy(Protocol):
    """Decides which URLs may be fetched and which files may be opened."""

    def check_url(self, url: str) -> None:
        """Raise NotAllowedError when ``url``'s host is not allowed (before any request is made)."""

    def check_file(self, path: str, root: str) -> None:
        """Raise NotAllowedError when ``path`` is outside the tree ``root``."""


class CatalogProcessor(Protocol):
    """Extension point (entry-point group ``greenroom.catalog.processors``).

    ``process`` takes a validated entity and the location it came from, and may return a changed
    entity and extra relations. It must not do I/O on the database. Raising InputError attaches a
    processing problem to the entity and skips it.
    """

    priority: int

    def process(self, entity: dict[str, Any], location: LocationSpec) -> tuple[dict[str, Any], Iterable[Relation]]:
        ...


def entity_ref_of(entity: Mapping[str, Any]) -> str:
    """The canonical ref of an entity envelope (assumes kind and metadata.name are present)."""
    meta = entity.get("metadata") or {}
    ns = meta.get("namespace") or DEFAULT_NAMESPACE
    return f"{str(entity['kind']).lower()}:{str(ns).lower()}/{str(meta['name']).lower()}"

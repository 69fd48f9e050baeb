"""Search domain types: the document every context hands to the index, and the extension points.

A :class:`SearchDocument` is identified by ``(type, key)``; indexing the same pair again replaces
the previous version, so producers never need to delete before updating. ``fields`` are both
ranked (as keywords, between the title and the body text) and filterable (``filters[kind]=...``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# Document types the portal produces; others may be added by plugins.
CATALOG_TYPE = "software-catalog"
TECHDOCS_TYPE = "techdocs"
TEMPLATES_TYPE = "templates"

FieldValue = str | list[str]


@dataclass(frozen=True)
class SearchDocument:
    """One searchable thing with a page in the portal.

    ``location`` is the portal path (``/catalog/default/component/foo``) or an absolute http(s)
    URL; anything else (``javascript:``…) is refused here, so no result link can run script.
    ``name`` is the short identifier a user types to find exactly this document (an entity's
    ``metadata.name``); it ranks above everything else. ``key`` defaults to ``location``.
    ``authorization`` is a resource ref (``component:default/foo``) a :class:`Visibility` may use.
    """

    type: str
    location: str
    title: str
    text: str = ""
    name: str = ""
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    authorization: str | None = None
    key: str = ""

    def __post_init__(self) -> None:
        if not self.type:
            raise ValueError("SearchDocument.type: required; e.g. 'software-catalog'")
        loc = self.location
        if not loc.startswith(("/", "https://", "http://")):
            raise ValueError(
                f"SearchDocument.location: {loc!r} must be a portal path starting with '/' "
                "or an http(s) URL"
            )
        if not self.key:
            object.__setattr__(self, "key", loc)

    def as_result(self) -> dict[str, Any]:
        """The ``document`` object of a Backstage search result (no authorization: callers
        must not learn resource refs they may not read)."""
        body: dict[str, Any] = dict(self.fields)
        body.update(title=self.title, text=self.text, location=self.location)
        return body


@dataclass(frozen=True)
class SearchResult:
    """One hit: Backstage's ``{type, document, highlight, rank}``; rank is 1-based overall."""

    document: SearchDocument
    rank: int
    highlight: Mapping[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.document.type, "document": self.document.as_result(),
                               "rank": self.rank}
        if self.highlight is not None:
            out["highlight"] = dict(self.highlight)
        return out


@dataclass(frozen=True)
class ResultPage:
    results: Sequence[SearchResult]
    next_cursor: str | None
    previous_cursor: str | None
    total: int | None

    def as_json(self) -> dict[str, Any]:
        """Backstage's ``/api/search/query`` response body."""
        body: dict[str, Any] = {"results": [r.as_json() for r in self.results]}
        if self.next_cursor is not None:
            body["nextPageCursor"] = self.next_cursor
        if self.previous_cursor is not None:
            body["previousPageCursor"] = self.previous_cursor
        if self.total is not None:
            body["numberOfResults"] = self.total
        return body


class Caller(Protocol):
    """Who is searching (satisfied by ``greenroom.auth.model.Principal``)."""

    @property
    def subject(self) -> str: ...


class Collator(Protocol):
    """Produces every document of one ``type`` for a full reindex (catalog, techdocs, scaffolder).

    ``collate`` may be a generator; it is consumed once, in order, in batches. Raising aborts the
    reindex and leaves the previous documents of that type in place.
    """

    type: str

    def collate(self) -> Iterable[SearchDocument]: ...


class Visibility(Protocol):
    """Permission hook: given the caller and candidate documents, return those the caller may
    read (order kept). Results a user may not read are never returned."""

    def __call__(self, principal: Caller | None,
                 documents: Sequence[SearchDocument]) -> Sequence[SearchDocument]: ...


def allow_all(principal: Caller | None, documents: Sequence[SearchDocument]) -> Sequence[SearchDocument]:
    """The default :class:`Visibility`: everyone may read everything."""
    return documents


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def entity_key(kind: str, namespace: str, name: str) -> str:
    """The ``key`` of an entity's document, for ``SearchService.remove(CATALOG_TYPE, [key])``."""
    return f"{kind}:{namespace or 'default'}/{name}".lower()


def entity_document(entity: Mapping[str, Any]) -> SearchDocument:
    """A catalog entity as a ``software-catalog`` document, shaped like Backstage's collator
    (``kind``, ``type``/``componentType``, ``namespace``, ``lifecycle``, ``owner``, ``tags``)."""
    meta = entity.get("metadata") or {}
    spec = entity.get("spec") or {}
    if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
        raise TypeError("entity: metadata and spec must be mappings")
    kind = _text(entity.get("kind"))
    name = _text(meta.get("name"))
    if not kind or not name:
        raise ValueError("entity: kind and metadata.name are required to index it")
    namespace = _text(meta.get("namespace")) or "default"
    profile = spec.get("profile") if isinstance(spec.get("profile"), Mapping) else {}
    display = _text(profile.get("displayName")) if profile else ""
    title = _text(meta.get("title")) or display or name
    spec_type = _text(spec.get("type"))
    tags = [t for t in (meta.get("tags") or []) if isinstance(t, str)]
    text = " ".join(p for p in (_text(meta.get("description")), display,
                                _text(profile.get("email")) if profile else "") if p)
    ref = entity_key(kind, namespace, name)
    fields: dict[str, FieldValue] = {
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "type": spec_type or "other",
        "componentType": spec_type or "other",
        "lifecycle": _text(spec.get("lifecycle")),
        "owner": _text(spec.get("owner")),
        "tags": tags,
    }
    return SearchDocument(
        type=CATALOG_TYPE,
        key=ref,
        location=f"/catalog/{namespace}/{kind}/{name}".lower(),
        title=title,
        text=text,
        name=name,
        fields={k: v for k, v in fields.items() if v},
        authorization=ref,
    )

"""Built docs in the search index: one document per page and one per section.

Model: after a successful build, every page of the stored site becomes search documents of type
``techdocs`` (Backstage's collator shape: ``kind``, ``namespace``, ``name``, ``entityTitle``,
``owner``, ``lifecycle``, ``componentType``, plus ``entityRef``, ``page`` and ``site``):

* the page itself, at ``/docs/{namespace}/{kind}/{name}/{page}``, with the text before its first
  section and its headings as keywords;
* each ``h2``/``h3`` section, at ``…/{page}#{anchor}``, titled by its heading, with the section's
  text (deeper headings stay in their section).

So a word finds the section it is written in, not the page and every section above it as well.
Text comes from the *sanitized* page body (what the reader sees), never from script or style.

Invariant: after :meth:`DocsIndexer.index_entity` the index holds exactly the sections of the
site now stored; documents of pages that no longer exist are removed. A failure raises and
leaves the previous documents in place (the next build or ``greenroom search reindex`` heals).

:class:`TechDocsCollator` and :class:`TemplateCollator` rebuild the ``techdocs`` and ``templates``
types for ``greenroom search reindex``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from greenroom.core.errors import InputError, NotFoundError
from greenroom.search.model import TECHDOCS_TYPE, TEMPLATES_TYPE, FieldValue, SearchDocument, entity_key
from greenroom.techdocs.engine import html
from greenroom.techdocs.engine.build_child import GREENROOM_PAGES_DIR, GREENROOM_SITE_FILE
from greenroom.techdocs.model import EntityTriple

if TYPE_CHECKING:
    from greenroom.search.service import SearchService
    from greenroom.techdocs.service import TechDocsService

_SECTION_TAGS = {"h2", "h3"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_SKIP_CLASSES = {"headerlink", "linenos", "linenodiv", "gr-external-image"}
_SKIP_TAGS = {"script", "style", "svg", "noscript", "template", "textarea"}  # never text, even unsanitized
_SPACE = re.compile(r"\s+")
_BLOCKS = {"p", "li", "td", "th", "pre", "div", "br", "tr", "dd", "dt", "blockquote", "summary"}


@dataclass
class Section:
    anchor: str | None
    title: str
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return _SPACE.sub(" ", "".join(self.parts)).strip()


class _Splitter(HTMLParser):
    """Splits a sanitized page body into a lead section and its h2/h3 sections."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = [Section(None, "")]
        self.headings: list[str] = []
        self._skip: list[str] = []  # open tags whose text is not content (¶ links, line numbers)
        self._heading: tuple[str, str | None, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self._skip:
            self._skip.append(tag)
            return
        if tag in _SKIP_TAGS or set((a.get("class") or "").split()) & _SKIP_CLASSES:
            if tag not in ("br", "img", "input", "hr", "wbr"):
                self._skip.append(tag)
            return
        if tag in _HEADINGS:
            self._heading = (tag, a.get("id"), [])
        elif tag in _BLOCKS:
            self._text(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            self._skip.pop()
            return
        if self._heading is not None and tag == self._heading[0]:
            name, anchor, parts = self._heading
            self._heading = None
            title = _SPACE.sub(" ", "".join(parts)).strip()
            if name != "h1" and title:
                self.headings.append(title)
            if name in _SECTION_TAGS and anchor:
                self.sections.append(Section(anchor, title))
            elif name != "h1":
                self.sections[-1].parts.append(f" {title} ")
        elif tag in _BLOCKS:
            self._text(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._text(data)

    def _text(self, data: str) -> None:
        if self._heading is not None:
            self._heading[2].append(data)
        else:
            self.sections[-1].parts.append(data)


def split_sections(body_html: str) -> tuple[list[Section], list[str]]:
    """``(sections, headings)``: the lead (anchor None) first, then each h2/h3 section."""
    parser = _Splitter()
    parser.feed(body_html)
    parser.close()
    return parser.sections, parser.headings


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def entity_fields(entity: Mapping[str, Any], triple: EntityTriple) -> dict[str, FieldValue]:
    """What every document of an entity's docs carries (Backstage's techdocs collator fields)."""
    meta = entity.get("metadata") or {}
    spec = entity.get("spec") or {}
    fields: dict[str, FieldValue] = {
        "kind": _text(entity.get("kind")) or triple.kind, "namespace": triple.namespace,
        "name": triple.name, "entityRef": triple.ref,
        "entityTitle": _text(meta.get("title")) or _text(meta.get("name")),
        "owner": _text(spec.get("owner")), "lifecycle": _text(spec.get("lifecycle")),
        "componentType": _text(spec.get("type")),
    }
    return {k: v for k, v in fields.items() if v}


def docs_documents(service: TechDocsService, ref: str | EntityTriple) -> list[SearchDocument]:
    """Search documents for every page of the entity's stored site; NotFoundError when the entity
    or its site is gone."""
    triple = ref if isinstance(ref, EntityTriple) else EntityTriple.parse(ref)
    entity = service.entities.get_entity(triple.ref)
    if entity is None:
        raise NotFoundError(f"Entity {triple.ref} not found")
    site = json.loads(service.storage.get_file(triple, GREENROOM_SITE_FILE)[0])
    base = entity_fields(entity, triple)
    site_name = _text(site.get("site_name"))
    out: list[SearchDocument] = []
    for dest, info in sorted((site.get("pages") or {}).items()):
        if not dest.endswith(".html"):
            continue
        try:
            raw, _ = service.storage.get_file(triple, f"{GREENROOM_PAGES_DIR}/{dest}")
        except (NotFoundError, InputError):
            continue
        url = _text(info.get("url"))
        body = html.sanitize(raw.decode("utf-8", "replace"), html.UrlRewriter(triple, url))
        sections, headings = split_sections(body)
        page_title = _text(info.get("title")) or site_name or triple.name
        location = f"/docs/{triple.path}/{url}"
        fields = {**base, "page": page_title, **({"site": site_name} if site_name else {})}
        # The home page is found as the site ("Tracking website"), not as its nav label "Overview".
        doc_title = (site_name or page_title) if url == "" else page_title
        out.append(SearchDocument(type=TECHDOCS_TYPE, location=location, title=doc_title,
                                  text=sections[0].text, fields={**fields, "headings": headings},
                                  authorization=triple.ref))
        for s in sections[1:]:
            out.append(SearchDocument(type=TECHDOCS_TYPE, location=f"{location}#{s.anchor}",
                                      title=s.title or page_title, text=s.text, fields=fields,
                                      authorization=triple.ref))
    return out


@dataclass(frozen=True)
class IndexStats:
    entity_ref: str
    documents: int
    removed: int


class DocsIndexer:
    """Keeps the ``techdocs`` documents of one entity equal to its stored site. Register
    ``indexer.on_built`` with :meth:`TechDocsService.add_build_listener`."""

    def __init__(self, techdocs: TechDocsService, search: SearchService) -> None:
        self.techdocs = techdocs
        self.search = search

    def indexed_keys(self, ref: str) -> set[str]:
        keys: set[str] = set()
        cursor: str | None = None
        while True:
            page = self.search.query("", types=[TECHDOCS_TYPE], filters={"entityRef": ref},
                                     page_cursor=cursor, page_limit=100)
            keys.update(r.document.key for r in page.results)
            cursor = page.next_cursor
            if cursor is None or not page.results:
                return keys

    def index_entity(self, ref: str) -> IndexStats:
        triple = EntityTriple.parse(ref)
        try:
            docs = docs_documents(self.techdocs, triple)
        except NotFoundError:
            docs = []  # entity or site gone: nothing of it may stay findable
        before = self.indexed_keys(triple.ref)
        self.search.index(docs)
        stale = sorted(before - {d.key for d in docs})
        removed = self.search.remove(TECHDOCS_TYPE, stale) if stale else 0
        return IndexStats(triple.ref, len(docs), removed)

    def on_built(self, ref: str) -> None:
        self.index_entity(ref)


class TechDocsCollator:
    """Every page of every stored docs site (``greenroom search reindex``)."""

    type = TECHDOCS_TYPE

    def __init__(self, techdocs: TechDocsService) -> None:
        self.techdocs = techdocs

    def collate(self) -> Iterator[SearchDocument]:
        for status in self.techdocs.list_documented():
            if not status.get("builtAt"):
                continue
            try:
                yield from docs_documents(self.techdocs, status["entityRef"])
            except (NotFoundError, InputError, ValueError):
                continue  # entity removed, or site deleted since its last build


def template_document(entity: Mapping[str, Any]) -> SearchDocument:
    """A Template entity as a ``templates`` document, linking to its page under ``/create``."""
    meta = entity.get("metadata") or {}
    spec = entity.get("spec") or {}
    name = _text(meta.get("name"))
    namespace = _text(meta.get("namespace")) or "default"
    if not name:
        raise ValueError("template: metadata.name is required to index it")
    tags = [t for t in (meta.get("tags") or []) if isinstance(t, str)]
    fields: dict[str, FieldValue] = {
        "kind": _text(entity.get("kind")) or "Template", "namespace": namespace, "name": name,
        "type": _text(spec.get("type")), "owner": _text(spec.get("owner")),
        "lifecycle": _text(spec.get("lifecycle")), "tags": tags,
    }
    ref = entity_key("template", namespace, name)
    return SearchDocument(
        type=TEMPLATES_TYPE, key=ref, location=f"/create/templates/{namespace}/{name}".lower(),
        title=_text(meta.get("title")) or name, text=_text(meta.get("description")), name=name,
        fields={k: v for k, v in fields.items() if v}, authorization=ref)


class TemplateCollator:
    """Every catalog entity of kind Template as a ``templates`` document."""

    type = TEMPLATES_TYPE

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog

    def collate(self) -> Iterator[SearchDocument]:
        from greenroom.catalog.service import EntityQuery

        offset = 0
        while True:
            page = self.catalog.query(EntityQuery(filters=[{"kind": ["template"]}], limit=500,
                                                  offset=offset))
            for entity in page.items:
                yield template_document(entity)
            if page.next_offset is None:
                return
            offset = page.next_offset

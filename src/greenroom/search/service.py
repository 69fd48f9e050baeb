"""Search use cases: index, remove, reindex a type, query with paging and highlights, suggest.

Each write is one transaction (a full reindex is one per batch, so readers keep seeing the old
documents until the new ones land, and stale ones go at the end). Queries never fail on what a
user typed: terms are sanitized (see ``engine.terms``); only a malformed ``pageCursor`` or a
``pageLimit`` out of range is an :class:`InputError`. Typo tolerance is a fallback: words one
edit away from a known word are tried only when the exact query matched nothing.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from greenroom.core.db import reading, transaction
from greenroom.core.errors import InputError
from greenroom.core.logs import event
from greenroom.search import store
from greenroom.search.engine.highlight import POST_TAG, PRE_TAG, mark
from greenroom.search.model import (
    Caller,
    Collator,
    ResultPage,
    SearchDocument,
    SearchResult,
    Visibility,
    allow_all,
)
from greenroom.search.model.terms import Terms, edits1, parse

log = logging.getLogger(__name__)

DEFAULT_PAGE_LIMIT = 25
MAX_PAGE_LIMIT = 100
MAX_SUGGESTIONS = 20
REINDEX_BATCH = 1000
_MAX_OFFSET = 1_000_000
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,40}")
_FUZZY_WORDS = 4
_FUZZY_ALTERNATIVES = 8

Progress = Callable[[int], None]
Filters = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True)
class ReindexStats:
    type: str
    documents: int
    changed: int
    removed: int
    seconds: float


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The offset inside an opaque cursor; :class:`InputError` for anything we did not issue."""
    if not cursor:
        return 0
    try:
        if not _CURSOR.fullmatch(cursor):
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not raw.startswith("o") or not raw[1:].isdigit():
            raise ValueError(raw)
        offset = int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InputError(f"pageCursor: {cursor[:40]!r} is not a cursor this server issued; "
                         "omit it to start from the first page") from None
    if offset > _MAX_OFFSET:
        raise InputError(f"pageCursor: offset {offset} is beyond {_MAX_OFFSET}; refine the term")
    return offset


def _filters(filters: Filters | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in (filters or {}).items():
        values = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
        if values:
            out[str(key)] = values
    return out


def _highlight(doc: SearchDocument, terms: Terms) -> dict[str, Any]:
    fields: dict[str, str] = {}
    for name, value, snippet in (("title", doc.title, False), ("text", doc.text, True)):
        marked = mark(value, terms.words, snippet=snippet)
        if marked is not None:
            fields[name] = marked
    return {"preTag": PRE_TAG, "postTag": POST_TAG, "fields": fields}


class SearchService:
    """The search index behind ``/api/search``. Thread-safe; holds no state but the engine."""

    def __init__(self, engine: Engine, visibility: Visibility = allow_all) -> None:
        self.engine = engine
        self.visibility = visibility

    # -- writes ---------------------------------------------------------------------------------

    def index(self, docs: Iterable[SearchDocument]) -> int:
        """Add or replace documents by ``(type, key)``, visible to the next query. Returns how
        many were new or changed."""
        return self._upsert(list(docs))

    def _upsert(self, docs: list[SearchDocument], generation: str | None = None) -> int:
        # Two replicas may index the same new document at once (PostgreSQL, read committed):
        # the loser's insert fails on the unique key; running again turns it into an update.
        for attempt in range(3):
            try:
                with transaction(self.engine) as conn:
                    return store.upsert(conn, docs, generation)
            except IntegrityError:
                if attempt == 2:
                    raise
        return 0

    def remove(self, doc_type: str, keys: Sequence[str]) -> int:
        """Remove documents by key (unknown keys ignored); returns how many went."""
        with transaction(self.engine) as conn:
            return store.delete(conn, doc_type, keys)

    def replace_all(self, doc_type: str, docs: Iterable[SearchDocument],
                    progress: Progress | None = None, batch: int = REINDEX_BATCH) -> ReindexStats:
        """Make the documents of ``doc_type`` exactly ``docs``: upsert in batches, then remove
        the ones not seen. ``progress(n)`` is called with the running count after each batch.
        If ``docs`` raises, nothing is removed and the error propagates."""
        started = time.perf_counter()
        generation = uuid.uuid4().hex
        seen = changed = 0
        pending: list[SearchDocument] = []

        def flush() -> None:
            nonlocal changed
            changed += self._upsert(list(pending), generation)
            pending.clear()
            if progress is not None:
                progress(seen)

        for doc in docs:
            if doc.type != doc_type:
                raise InputError(f"replace_all({doc_type!r}): document {doc.key!r} has type "
                                 f"{doc.type!r}; a collator must yield one type only")
            pending.append(doc)
            seen += 1
            if len(pending) >= batch:
                flush()
        if pending or progress is not None:
            flush()
        with transaction(self.engine) as conn:
            removed = store.delete_stale(conn, doc_type, generation)
        if changed + removed >= batch:
            with transaction(self.engine) as conn:
                store.optimize(conn)
        stats = ReindexStats(doc_type, seen, changed, removed, round(time.perf_counter() - started, 3))
        event(log, "search.reindexed", type=doc_type, documents=seen, changed=changed,
              removed=removed, seconds=stats.seconds)
        return stats

    def reindex(self, collator: Collator, progress: Progress | None = None) -> ReindexStats:
        return self.replace_all(collator.type, collator.collate(), progress)

    # -- reads ----------------------------------------------------------------------------------

    def query(self, term: str | None = None, types: Sequence[str] = (), filters: Filters | None = None,
              page_cursor: str | None = None, page_limit: int | None = None,
              principal: Caller | None = None) -> ResultPage:
        """One page of results, best first, in Backstage's result-set shape (see ``as_json``)."""
        limit = DEFAULT_PAGE_LIMIT if page_limit is None else page_limit
        if not 1 <= limit <= MAX_PAGE_LIMIT:
            raise InputError(f"pageLimit: {limit} is outside 1..{MAX_PAGE_LIMIT}")
        offset = decode_cursor(page_cursor)
        terms = parse(term)
        flt = _filters(filters)
        with reading(self.engine) as conn:
            m = store.Match(terms, tuple((w,) for w in terms.words))
            hits, total = store.search(conn, m, types, flt, offset, limit)
            if total == 0 and terms.words:
                fuzzy = self._fuzzy(conn, terms)
                if fuzzy is not None:
                    m = fuzzy
                    hits, total = store.search(conn, m, types, flt, offset, limit)
            pos, page = self._visible(conn, m, types, flt, principal, offset, limit, hits, total)
        filtered = self.visibility is not allow_all
        # Highlight what actually matched: after a typo fallback, the corrected words.
        marked = Terms(terms.raw, terms.norm, tuple(w for g in m.groups for w in g))
        results = [SearchResult(doc, rank, _highlight(doc, marked) if not terms.empty else None)
                   for rank, doc in page]
        return ResultPage(
            results=results,
            next_cursor=encode_cursor(pos) if pos < total else None,
            previous_cursor=encode_cursor(max(0, offset - limit)) if offset > 0 else None,
            total=None if filtered else total,
        )

    def _visible(self, conn: Connection, m: store.Match, types: Sequence[str],
                 flt: Mapping[str, Sequence[str]], principal: Caller | None, offset: int, limit: int,
                 hits: list[store.Hit], total: int) -> tuple[int, list[tuple[int, SearchDocument]]]:
        """Fill a page with documents the caller may read, reading further hits as needed.
        Returns the raw position to continue from and ``(rank, document)`` pairs."""
        if self.visibility is allow_all:
            return offset + len(hits), [(offset + i + 1, h.document) for i, h in enumerate(hits)]
        page: list[tuple[int, SearchDocument]] = []
        pos = offset
        while hits:
            allowed = {id(d) for d in self.visibility(principal, [h.document for h in hits])}
            for h in hits:
                pos += 1
                if id(h.document) in allowed:
                    page.append((pos, h.document))
                    if len(page) == limit:
                        return pos, page
            if pos >= total:
                break
            hits, _ = store.search(conn, m, types, flt, pos, max(limit, 50))
        return pos, page

    def _fuzzy(self, conn: Connection, terms: Terms) -> store.Match | None:
        """Words one edit from a vocabulary word, for words the index has never seen."""
        known = store.known_words(conn, terms.words)
        groups: list[tuple[str, ...]] = []
        changed = 0
        for w in terms.words:
            if w in known or len(w) < 4 or len(w) > 24 or w.isdigit() or changed >= _FUZZY_WORDS:
                groups.append((w,))
                continue
            near = sorted(store.known_words(conn, edits1(w)))[:_FUZZY_ALTERNATIVES]
            groups.append((w, *near))
            changed += bool(near)
        if not changed:
            return None
        # Exact and prefix tiers compare the term as typed, which matched nothing; only text counts.
        return store.Match(terms, tuple(groups), name_tiers=False)

    def suggest(self, prefix: str, limit: int = 8, types: Sequence[str] = (),
                principal: Caller | None = None) -> list[SearchResult]:
        """As-you-type suggestions: exact name, then name/title prefix, then word-prefix matches."""
        limit = max(1, min(limit, MAX_SUGGESTIONS))
        terms = parse(prefix)
        if terms.empty:
            return []
        m = store.Match(terms, tuple((w,) for w in terms.words), prefix_last=True)
        with reading(self.engine) as conn:
            hits = store.suggest(conn, m, types, limit * 2)
        docs = list(self.visibility(principal, [h.document for h in hits]))[:limit]
        return [SearchResult(d, i + 1, _highlight(d, terms)) for i, d in enumerate(docs)]

    def facets(self, term: str | None, keys: Sequence[str] = ("type",), types: Sequence[str] = (),
               filters: Filters | None = None) -> dict[str, dict[str, int]]:
        """Hit counts per value of each field in ``keys`` (``"type"`` for the type tabs).
        Counts ignore visibility; a page showing them to users should say "about"."""
        terms = parse(term)
        flt = _filters(filters)
        out: dict[str, dict[str, int]] = {}
        with reading(self.engine) as conn:
            m = store.Match(terms, tuple((w,) for w in terms.words))
            for key in keys:
                # A tab bar counts every type, whatever tab is selected.
                scope_types = () if key == "type" else types
                scope_filters = {k: v for k, v in flt.items() if k != key}
                out[key] = store.facet_counts(conn, m, key, scope_types, scope_filters)
        return out

    def count(self, doc_type: str | None = None) -> int:
        with reading(self.engine) as conn:
            return store.document_count(conn, doc_type)

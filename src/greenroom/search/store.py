"""Search storage: documents, filter values and vocabulary, with SQLite FTS5 or PostgreSQL text search.

Model: one row per ``(type, key)`` in ``search_documents``. The full-text columns (``f_name``,
``f_title``, ``f_keywords``, ``f_text``) hold the document's words already split by
:func:`engine.terms.word_string`, so both databases see the same words. SQLite indexes them in an
external-content FTS5 table (``porter unicode61``) kept in step by triggers; PostgreSQL in a
generated ``tsvector`` (``english``, weights A/B/C/D) with a GIN index. ``search_filters`` holds
one lower-cased row per filterable field value; ``search_terms`` is the vocabulary used only for
typo fallback (it only grows; a stale word merely finds nothing).

Ranking is one ordered key per hit, lower first: exact name (0), exact title (100000), name
prefix (200000 + length), title prefix (300000 + length), full-text match (400000 - relevance).
Every value reaches SQL as a bound parameter; match expressions are built only from
letter-and-digit words. Functions here never commit; the service owns transactions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    text,
)

from greenroom.core.db import metadata
from greenroom.search.model import SearchDocument
from greenroom.search.model.terms import Terms, like_prefix, normalize, prefix_upper, word_string, words

documents_table = Table(
    "search_documents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("type", String(100), nullable=False),
    Column("key", String(1000), nullable=False),
    Column("location", Text, nullable=False),
    Column("name_norm", String(500)),
    Column("title_norm", String(500), nullable=False),
    Column("document", Text, nullable=False),
    Column("auth_ref", String(1000)),
    Column("hash", String(64), nullable=False),
    Column("generation", String(64)),
    Column("f_name", Text, nullable=False),
    Column("f_title", Text, nullable=False),
    Column("f_keywords", Text, nullable=False),
    Column("f_text", Text, nullable=False),
    UniqueConstraint("type", "key"),
)
filters_table = Table(
    "search_filters", metadata,
    Column("doc_id", Integer, ForeignKey("search_documents.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", String(500), nullable=False),
    PrimaryKeyConstraint("key", "value", "doc_id"),
)
terms_table = Table("search_terms", metadata, Column("term", String(64), primary_key=True))

# PostgreSQL refuses a tsvector over 1 MB; no page needs more than this to be found.
MAX_INDEXED_TEXT = 200_000
_BATCH = 500


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _serialize(doc: SearchDocument) -> str:
    return json.dumps({"type": doc.type, "key": doc.key, "location": doc.location, "title": doc.title,
                       "text": doc.text, "name": doc.name, "fields": dict(doc.fields),
                       "authorization": doc.authorization}, sort_keys=True, separators=(",", ":"))


def deserialize(raw: str) -> SearchDocument:
    d = json.loads(raw)
    return SearchDocument(type=d["type"], key=d["key"], location=d["location"], title=d["title"],
                          text=d["text"], name=d["name"], fields=d["fields"],
                          authorization=d["authorization"])


def _keywords(doc: SearchDocument) -> str:
    parts: list[str] = []
    for key, value in doc.fields.items():
        if key in ("name", "title"):
            continue  # ranked in their own columns
        parts.extend([value] if isinstance(value, str) else value)
    return word_string(" ".join(parts))


def _row(doc: SearchDocument, body: str, generation: str | None) -> dict[str, Any]:
    return {
        "type": doc.type, "key": doc.key, "location": doc.location,
        "name_norm": normalize(doc.name) or None, "title_norm": normalize(doc.title),
        "document": body, "auth_ref": doc.authorization,
        "hash": hashlib.sha256(body.encode()).hexdigest(), "generation": generation,
        "f_name": word_string(doc.name), "f_title": word_string(doc.title),
        "f_keywords": _keywords(doc), "f_text": word_string(doc.text[:MAX_INDEXED_TEXT]),
    }


def _filter_rows(doc_id: int, doc: SearchDocument) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    for key, value in doc.fields.items():
        for v in [value] if isinstance(value, str) else value:
            seen.add((key[:200], v.lower()[:500]))
    return [{"doc_id": doc_id, "key": k, "value": v} for k, v in sorted(seen)]


def upsert(conn: Connection, docs: Iterable[SearchDocument], generation: str | None = None) -> int:
    """Insert or replace documents by ``(type, key)``; returns how many rows changed.

    Unchanged documents (same content hash) are not rewritten, only stamped with ``generation``.
    """
    latest: dict[tuple[str, str], SearchDocument] = {}
    for doc in docs:
        latest[(doc.type, doc.key)] = doc
    changed = 0
    items = list(latest.items())
    for start in range(0, len(items), _BATCH):
        changed += _upsert_batch(conn, items[start:start + _BATCH], generation)
    return changed


def _existing(conn: Connection, doc_type: str, keys: list[str]) -> dict[str, tuple[int, str]]:
    rows = conn.execute(
        text("SELECT id, key, hash FROM search_documents WHERE type = :t AND key IN :keys")
        .bindparams(bindparam("keys", expanding=True)), {"t": doc_type, "keys": keys})
    return {r.key: (r.id, r.hash) for r in rows}


def _upsert_batch(conn: Connection, items: list[tuple[tuple[str, str], SearchDocument]],
                  generation: str | None) -> int:
    by_type: dict[str, list[str]] = {}
    for (doc_type, key), _ in items:
        by_type.setdefault(doc_type, []).append(key)
    existing: dict[tuple[str, str], tuple[int, str]] = {}
    for doc_type, keys in by_type.items():
        existing.update({(doc_type, k): v for k, v in _existing(conn, doc_type, keys).items()})
    by_ident = dict(items)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    touched: list[int] = []
    filter_docs: list[tuple[int, SearchDocument]] = []
    for ident, doc in items:
        row = _row(doc, _serialize(doc), generation)
        old = existing.get(ident)
        if old is None:
            inserts.append(row)
        elif old[1] == row["hash"]:
            touched.append(old[0])
        else:
            updates.append({**row, "id": old[0]})
    if touched and generation is not None:
        conn.execute(text("UPDATE search_documents SET generation = :g WHERE id IN :ids")
                     .bindparams(bindparam("ids", expanding=True)), {"g": generation, "ids": touched})
    if updates:
        conn.execute(documents_table.update().where(documents_table.c.id == bindparam("_id")),
                     [{**{k: v for k, v in u.items() if k != "id"}, "_id": u["id"]} for u in updates])
        conn.execute(text("DELETE FROM search_filters WHERE doc_id IN :ids")
                     .bindparams(bindparam("ids", expanding=True)), {"ids": [u["id"] for u in updates]})
        filter_docs.extend((u["id"], by_ident[(u["type"], u["key"])]) for u in updates)
    if inserts:
        conn.execute(documents_table.insert(), inserts)
        for doc_type in {r["type"] for r in inserts}:
            keys = [r["key"] for r in inserts if r["type"] == doc_type]
            ids = _existing(conn, doc_type, keys)
            filter_docs.extend((ids[k][0], by_ident[(doc_type, k)]) for k in keys)
    frows = [r for doc_id, doc in filter_docs for r in _filter_rows(doc_id, doc)]
    if frows:
        conn.execute(filters_table.insert(), frows)
    _add_vocabulary(conn, [d for _, d in items])
    return len(inserts) + len(updates)


def _add_vocabulary(conn: Connection, docs: Sequence[SearchDocument]) -> None:
    vocab: set[str] = set()
    for doc in docs:
        for w in words(" ".join((doc.name, doc.title, doc.text[:MAX_INDEXED_TEXT], _keywords(doc)))):
            if 3 <= len(w) <= 64 and not w.isdigit():
                vocab.add(w)
    if vocab:
        conn.execute(text("INSERT INTO search_terms(term) VALUES (:term) ON CONFLICT DO NOTHING"),
                     [{"term": w} for w in sorted(vocab)])


def delete(conn: Connection, doc_type: str, keys: Sequence[str]) -> int:
    """Remove documents by key; unknown keys are ignored. Returns how many were removed."""
    removed = 0
    for start in range(0, len(keys), _BATCH):
        chunk = list(keys[start:start + _BATCH])
        params = {"t": doc_type, "keys": chunk}
        conn.execute(text("DELETE FROM search_filters WHERE doc_id IN (SELECT id FROM search_documents "
                          "WHERE type = :t AND key IN :keys)")
                     .bindparams(bindparam("keys", expanding=True)), params)
        removed += conn.execute(text("DELETE FROM search_documents WHERE type = :t AND key IN :keys")
                                .bindparams(bindparam("keys", expanding=True)), params).rowcount
    return removed


def delete_stale(conn: Connection, doc_type: str, generation: str) -> int:
    """Remove documents of ``doc_type`` not stamped with ``generation`` (end of a full reindex)."""
    cond = "type = :t AND (generation IS NULL OR generation <> :g)"
    params = {"t": doc_type, "g": generation}
    conn.execute(text(f"DELETE FROM search_filters WHERE doc_id IN "
                      f"(SELECT id FROM search_documents WHERE {cond})"), params)
    return conn.execute(text(f"DELETE FROM search_documents WHERE {cond}"), params).rowcount


def optimize(conn: Connection) -> None:
    """After a bulk load: merge FTS5 segments (SQLite) or flush the GIN pending list and refresh
    statistics (PostgreSQL; until then the planner scans the table and each query costs ~10 ms)."""
    if _pg(conn):
        conn.execute(text("SELECT gin_clean_pending_list('ix_search_documents_tsv'::regclass)"))
        conn.execute(text("ANALYZE search_documents"))
        conn.execute(text("ANALYZE search_filters"))
    else:
        conn.execute(text("INSERT INTO search_fts(search_fts) VALUES ('optimize')"))
        conn.execute(text("ANALYZE search_documents"))
        conn.execute(text("ANALYZE search_filters"))


def known_words(conn: Connection, candidates: Iterable[str]) -> set[str]:
    """Which of ``candidates`` occur in some indexed document (vocabulary lookup)."""
    cands = sorted(set(candidates))
    if not cands:
        return set()
    rows = conn.execute(text("SELECT term FROM search_terms WHERE term IN :c")
                        .bindparams(bindparam("c", expanding=True)), {"c": cands})
    return {r.term for r in rows}


@dataclass(frozen=True)
class Match:
    """What to match: ``terms.norm`` for exact/prefix tiers, ``groups`` for full text (AND of
    groups, OR within a group), ``prefix_last`` to match the last group's word as a prefix."""

    terms: Terms
    groups: tuple[tuple[str, ...], ...]
    prefix_last: bool = False
    name_tiers: bool = True


def _fts5_expr(m: Match) -> str:
    parts = []
    for i, group in enumerate(m.groups):
        star = "*" if m.prefix_last and i == len(m.groups) - 1 else ""
        quoted = [f'"{w}"{star}' for w in group]  # words hold letters and digits only
        parts.append(quoted[0] if len(quoted) == 1 else "(" + " OR ".join(quoted) + ")")
    return " AND ".join(parts)


def _tsquery_expr(m: Match) -> str:
    parts = []
    for i, group in enumerate(m.groups):
        star = ":*" if m.prefix_last and i == len(m.groups) - 1 else ""
        quoted = [f"'{w}'{star}" for w in group]
        parts.append(quoted[0] if len(quoted) == 1 else "(" + " | ".join(quoted) + ")")
    return " & ".join(parts)


def _hits_sql(conn: Connection, m: Match, params: dict[str, Any]) -> str:
    """The ``best(id, score)`` CTE body: each matching document once, with its best score."""
    pg = _pg(conn)
    norm = m.terms.norm
    branches = []
    if m.name_tiers:
        params["norm"] = norm
        branches += ["SELECT id, 0.0 AS score FROM search_documents WHERE name_norm = :norm",
                     "SELECT id, 100000.0 FROM search_documents WHERE title_norm = :norm"]
    if m.name_tiers and len(norm) >= 2:
        params.update(hi=prefix_upper(norm), like=like_prefix(norm))
        if pg:
            branches += [
                ("SELECT id, 200000.0 + length(name_norm) FROM search_documents "
                 "WHERE name_norm LIKE :like ESCAPE '\\'"),
                ("SELECT id, 300000.0 + length(title_norm) FROM search_documents "
                 "WHERE title_norm LIKE :like ESCAPE '\\'")]
        else:
            branches += [
                ("SELECT id, 200000.0 + length(name_norm) FROM search_documents "
                 "WHERE name_norm >= :norm AND name_norm < :hi"),
                ("SELECT id, 300000.0 + length(title_norm) FROM search_documents "
                 "WHERE title_norm >= :norm AND title_norm < :hi")]
    if m.groups:
        if pg:
            params["match"] = _tsquery_expr(m)
            branches.append("SELECT id, 400000.0 - 100.0 * ts_rank(tsv, to_tsquery('english', :match)) "
                            "FROM search_documents WHERE tsv @@ to_tsquery('english', :match)")
        else:
            params["match"] = _fts5_expr(m)
            branches.append("SELECT rowid, 400000.0 + bm25(search_fts, 10.0, 6.0, 3.0, 1.0) "
                            "FROM search_fts WHERE search_fts MATCH :match")
    # Never a lone branch: SQLite would flatten it into the outer query, where bm25() is illegal.
    branches.append("SELECT id, 0.0 FROM search_documents WHERE 1 = 0")
    return ("hits(id, score) AS (" + " UNION ALL ".join(branches) + "), "
            "best AS (SELECT id, min(score) AS score FROM hits GROUP BY id)")


def _conditions(types: Sequence[str], filters: Mapping[str, Sequence[str]],
                params: dict[str, Any], binds: list[Any]) -> str:
    conds = []
    if types:
        params["types"] = list(types)
        binds.append(bindparam("types", expanding=True))
        conds.append("d.type IN :types")
    for i, (key, values) in enumerate(sorted(filters.items())):
        params[f"fk{i}"] = key
        params[f"fv{i}"] = [v.lower() for v in values]
        binds.append(bindparam(f"fv{i}", expanding=True))
        conds.append(f"d.id IN (SELECT doc_id FROM search_filters WHERE key = :fk{i} AND value IN :fv{i})")
    return (" WHERE " + " AND ".join(conds)) if conds else ""


@dataclass(frozen=True)
class Hit:
    document: SearchDocument
    score: float


def search(conn: Connection, m: Match, types: Sequence[str], filters: Mapping[str, Sequence[str]],
           offset: int, limit: int) -> tuple[list[Hit], int]:
    """One page of hits in rank order, and the total number of hits.

    Ranks and counts ids first and reads documents for the page only: with tens of thousands of
    hits for a common word, touching every document row would cost more than ranking them.
    """
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    binds: list[Any] = []
    where = _conditions(types, filters, params, binds)
    if m.terms.empty:
        sql = (f"SELECT d.id, 0.0 AS score, count(*) OVER () AS total FROM search_documents d"
               f"{where} ORDER BY d.title_norm, d.id LIMIT :limit OFFSET :offset")
    else:
        join = " JOIN search_documents d ON d.id = best.id" if where else ""
        sql = (f"WITH {_hits_sql(conn, m, params)} "
               f"SELECT best.id, best.score, count(*) OVER () AS total FROM best{join}{where} "
               f"ORDER BY best.score, best.id LIMIT :limit OFFSET :offset")
    rows = conn.execute(text(sql).bindparams(*binds), params).all()
    if not rows:
        return [], count(conn, m, types, filters) if offset > 0 else 0
    docs = {r.id: r.document for r in conn.execute(
        text("SELECT id, document FROM search_documents WHERE id IN :ids")
        .bindparams(bindparam("ids", expanding=True)), {"ids": [r.id for r in rows]})}
    hits = [Hit(deserialize(docs[r.id]), float(r.score)) for r in rows if r.id in docs]
    return hits, int(rows[0].total)


def count(conn: Connection, m: Match, types: Sequence[str], filters: Mapping[str, Sequence[str]]) -> int:
    params: dict[str, Any] = {}
    binds: list[Any] = []
    where = _conditions(types, filters, params, binds)
    if m.terms.empty:
        sql = f"SELECT count(*) FROM search_documents d{where}"
    else:
        sql = f"WITH {_hits_sql(conn, m, params)} SELECT count(*) FROM best JOIN search_documents d " \
              f"ON d.id = best.id{where}"
    return int(conn.execute(text(sql).bindparams(*binds), params).scalar_one())


def facet_counts(conn: Connection, m: Match, key: str, types: Sequence[str],
                 filters: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """How many hits have each value of field ``key`` (``"type"``: the document type)."""
    params: dict[str, Any] = {"facet": key}
    binds: list[Any] = []
    where = _conditions(types, filters, params, binds)
    source = "search_documents d" if m.terms.empty else \
        "best JOIN search_documents d ON d.id = best.id"
    head = "" if m.terms.empty else f"WITH {_hits_sql(conn, m, params)} "
    if key == "type":
        sql = f"{head}SELECT d.type AS value, count(*) AS n FROM {source}{where} GROUP BY d.type"
    else:
        join = " JOIN search_filters f ON f.doc_id = d.id AND f.key = :facet"
        sql = f"{head}SELECT f.value AS value, count(*) AS n FROM {source}{join}{where} GROUP BY f.value"
    rows = conn.execute(text(sql).bindparams(*binds), params)
    return {r.value: int(r.n) for r in rows}


def document_count(conn: Connection, doc_type: str | None = None) -> int:
    if doc_type is None:
        return int(conn.execute(text("SELECT count(*) FROM search_documents")).scalar_one())
    return int(conn.execute(text("SELECT count(*) FROM search_documents WHERE type = :t"),
                            {"t": doc_type}).scalar_one())


def suggest(conn: Connection, m: Match, types: Sequence[str], limit: int) -> list[Hit]:
    """The best ``limit`` hits without counting them all (as-you-type). A last word under three
    characters matches names and titles by prefix only: ``s*`` over every word would be slow."""
    if m.groups and len(m.groups[-1][0]) < 3:
        m = Match(m.terms, (), name_tiers=m.name_tiers)
    params: dict[str, Any] = {"limit": limit}
    binds: list[Any] = []
    where = _conditions(types, {}, params, binds)
    sql = (f"WITH {_hits_sql(conn, m, params)} SELECT d.document, best.score "
           f"FROM best JOIN search_documents d ON d.id = best.id{where} "
           f"ORDER BY best.score, d.title_norm, d.id LIMIT :limit")
    rows = conn.execute(text(sql).bindparams(*binds), params).all()
    return [Hit(deserialize(r.document), float(r.score)) for r in rows]

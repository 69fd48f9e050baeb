"""Catalog tables and every query on them. Never commits: the service owns transactions.

Tables:
- ``catalog_locations``: what is read. Roots come from configuration or the API; children are
  the targets of Location entities found while reading a parent. A row is claimed with a lease
  (``lease_owner``/``lease_until``) so that only one worker in any replica reads it at a time.
- ``catalog_entities``: one row per entity ref, the stored body without ``relations``/``status``,
  which are stitched on read. ``location_id`` is the location that emitted it (its claim);
  ``orphan`` is set when that location stops emitting it.
- ``catalog_relations``: both directions of every relation, keyed by the entity whose processing
  emitted them (``origin_uid``), so re-processing one entity replaces exactly its rows.
- ``catalog_state``: one row whose ``version`` changes with every write readers can see.
- ``catalog_search``: flattened ``key = value`` rows (lower-cased) that filters, facets, ordering
  and the full-text filter run on, as in Backstage's ``search`` table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from greenroom.core.db import metadata

locations = Table(
    "catalog_locations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("target", Text, nullable=False),
    Column("key", String(64), nullable=False, unique=True),  # sha1 of "type:target"
    Column("parent_id", String(36), ForeignKey("catalog_locations.id", ondelete="CASCADE"), index=True),
    Column("root_id", String(36), nullable=False, index=True),
    Column("origin", String(16), nullable=False),  # config | api | child
    Column("entity_ref", Text),  # the Location entity standing for this location
    Column("position", Integer, nullable=False, default=0),  # registration order, for conflicts
    Column("created_at", Float, nullable=False),
    Column("next_refresh_at", Float, nullable=False, index=True),
    Column("last_read_at", Float),
    Column("last_duration_ms", Float),
    Column("status", String(16), nullable=False, default="pending"),  # pending | ok | failed
    Column("errors", Text, nullable=False, default="[]"),  # JSON list of status items
    Column("lease_owner", String(64)),
    Column("lease_until", Float),
)

entities = Table(
    "catalog_entities",
    metadata,
    Column("uid", String(36), primary_key=True),
    Column("ref", Text, nullable=False, unique=True),
    Column("kind", String(64), nullable=False),
    Column("namespace", String(64), nullable=False),
    Column("name", String(253), nullable=False),
    Column("location_id", String(36), ForeignKey("catalog_locations.id", ondelete="SET NULL"), index=True),
    Column("body", Text, nullable=False),  # JSON of the entity without relations and status
    Column("hash", String(40), nullable=False),
    Column("etag", String(40), nullable=False),
    Column("generation", Integer, nullable=False, default=1),
    Column("orphan", Boolean, nullable=False, default=False),
    Column("errors", Text, nullable=False, default="[]"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False, index=True),
    Index("ix_catalog_entities_kind_namespace_name", "kind", "namespace", "name"),
    Index("ix_catalog_entities_name", "name"),
)

relations = Table(
    "catalog_relations",
    metadata,
    Column("origin_uid", String(36), nullable=False, index=True),
    Column("source", Text, nullable=False),
    Column("type", String(64), nullable=False),
    Column("target", Text, nullable=False),
    # Covering: stitching reads (type, target) of many sources without touching the table.
    Index("ix_catalog_relations_source_type_target", "source", "type", "target"),
    Index("ix_catalog_relations_type_target", "type", "target"),
)

search = Table(
    "catalog_search",
    metadata,
    Column("uid", String(36), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", String(255)),  # lower-cased; None when longer than MAX_VALUE_LENGTH
    Column("original", String(255)),  # as written, for facets
    Index("ix_catalog_search_key_value", "key", "value", "uid"),
    Index("ix_catalog_search_uid_key", "uid", "key", "value"),  # ordering and deletes by entity
)


state = Table(
    "catalog_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    # Bumped by every transaction that changes what entity reads answer; read answers cached
    # under it stay valid exactly as long as it does (in every replica).
    Column("version", Integer, nullable=False),
)


def read_version(conn: Connection) -> int:
    return int(conn.execute(select(state.c.version).where(state.c.id == 1)).scalar() or 0)


def bump_version(conn: Connection) -> None:
    """Call last in a writing transaction (on PostgreSQL the row stays locked until commit)."""
    if conn.execute(update(state).where(state.c.id == 1).values(version=state.c.version + 1)).rowcount == 0:
        conn.execute(insert(state).values(id=1, version=1))


def analyze(conn: Connection) -> None:
    """Refresh PostgreSQL's planner statistics of the catalog tables. Without them, right after a
    large first ingestion, ``source IN (100 refs)`` is estimated at half the relations table and
    planned as a sequential scan (155 ms instead of < 1 ms at 100k entities)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {entities.name}, {relations.name}, {search.name}")


def bulk_insert(conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert many rows through the driver's own executemany (psycopg pipelines it): several
    times faster than SQLAlchemy's per-row parameter processing, same transaction."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cols = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO {table.name} ({cols}) VALUES ({", ".join([mark] * len(columns))})'
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


# --- locations -------------------------------------------------------------------------------

def insert_location(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(locations), [row])


def get_location(conn: Connection, location_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(locations).where(locations.c.id == location_id)).mappings().first()
    return dict(row) if row else None


def get_location_by_key(conn: Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(select(locations).where(locations.c.key == key)).mappings().first()
    return dict(row) if row else None


def list_locations(conn: Connection, roots_only: bool = False) -> list[dict[str, Any]]:
    q = select(locations).order_by(locations.c.position, locations.c.created_at)
    if roots_only:
        q = q.where(locations.c.parent_id.is_(None))
    return [dict(r) for r in conn.execute(q).mappings()]


def max_position(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(locations.c.position), 0))).scalar_one())


def lock_locations(conn: Connection, ids: Sequence[str]) -> list[str]:
    """Take row locks on these locations (PostgreSQL; SQLite's writer lock already serialises),
    in id order so that two writers never wait on each other in a circle. Returns the ids that
    still exist."""
    return list(conn.execute(
        select(locations.c.id).where(locations.c.id.in_(list(ids))).order_by(locations.c.id).with_for_update()
    ).scalars())


def subtree_ids(conn: Connection, root_id: str) -> list[str]:
    """Ids of ``root_id`` and every location below it."""
    ids, frontier = [root_id], [root_id]
    while frontier:
        frontier = list(conn.execute(
            select(locations.c.id).where(locations.c.parent_id.in_(frontier))
        ).scalars())
        ids.extend(frontier)
    return ids


def ancestor_keys(conn: Connection, location_id: str) -> list[str]:
    keys: list[str] = []
    current: str | None = location_id
    while current:
        row = conn.execute(
            select(locations.c.key, locations.c.parent_id).where(locations.c.id == current)
        ).first()
        if not row:
            break
        keys.append(row.key)
        current = row.parent_id
    return keys


def children_of(conn: Connection, parent_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        select(locations).where(locations.c.parent_id == parent_id)
    ).mappings()]


def delete_locations(conn: Connection, ids: Sequence[str]) -> None:
    if ids:
        conn.execute(delete(locations).where(locations.c.id.in_(list(ids))))


def claim(conn: Connection, location_id: str, owner: str, now: float, lease_seconds: float,
          *, due_only: bool = False, unread_since: float | None = None) -> bool:
    """Take the lease on one location if nobody holds a live one. Atomic compare-and-set.

    ``due_only``: only if its refresh time has come. ``unread_since``: only if nobody read it
    after that time (so a replica that just did the work is not repeated)."""
    q = (update(locations)
         .where(locations.c.id == location_id)
         .where(or_(locations.c.lease_until.is_(None), locations.c.lease_until < now,
                    locations.c.lease_owner == owner)))
    if due_only:
        q = q.where(locations.c.next_refresh_at <= now)
    if unread_since is not None:
        q = q.where(or_(locations.c.last_read_at.is_(None), locations.c.last_read_at < unread_since))
    return conn.execute(q.values(lease_owner=owner, lease_until=now + lease_seconds)).rowcount == 1


def due_ids(conn: Connection, now: float, limit: int) -> list[str]:
    """Locations whose refresh time has come and whose lease (if any) has expired, roots first."""
    return list(conn.execute(
        select(locations.c.id)
        .where(locations.c.next_refresh_at <= now)
        .where(or_(locations.c.lease_until.is_(None), locations.c.lease_until < now))
        .order_by(locations.c.next_refresh_at, locations.c.position)
        .limit(limit)
    ).scalars())


def finish(conn: Connection, location_id: str, owner: str, values: dict[str, Any]) -> None:
    conn.execute(
        update(locations)
        .where(locations.c.id == location_id)
        .values(lease_owner=None, lease_until=None, **values)
    )


def release(conn: Connection, location_id: str, owner: str) -> None:
    conn.execute(
        update(locations)
        .where(and_(locations.c.id == location_id, locations.c.lease_owner == owner))
        .values(lease_owner=None, lease_until=None)
    )


def mark_due(conn: Connection, ids: Sequence[str] | None, now: float) -> int:
    q = update(locations).values(next_refresh_at=now)
    if ids is not None:
        q = q.where(locations.c.id.in_(list(ids)))
    return conn.execute(q).rowcount


def pending_count(conn: Connection, now: float) -> int:
    return int(conn.execute(
        select(func.count()).select_from(locations).where(locations.c.last_read_at.is_(None))
    ).scalar_one())


def locations_for_targets(conn: Connection, prefix: str) -> list[str]:
    """Ids of locations whose target starts with ``prefix`` (e.g. a repository's URL)."""
    return list(conn.execute(
        select(locations.c.id).where(locations.c.target.startswith(prefix, autoescape=True))
    ).scalars())


def location_errors_for(conn: Connection, entity_refs: Iterable[str]) -> dict[str, list[str]]:
    """Errors of locations, keyed by the Location entity standing for them."""
    refs = list(entity_refs)
    out: dict[str, list[str]] = {}
    if not refs:
        return out
    for row in conn.execute(
        select(locations.c.entity_ref, locations.c.errors)
        .where(locations.c.entity_ref.in_(refs))
        .where(locations.c.errors != "[]")
    ):
        out.setdefault(row.entity_ref, []).append(row.errors)
    return out


# --- entities --------------------------------------------------------------------------------

ENTITY_COLUMNS = (entities.c.uid, entities.c.ref, entities.c.body, entities.c.etag,
                  entities.c.generation, entities.c.orphan, entities.c.errors, entities.c.kind,
                  entities.c.location_id, entities.c.updated_at)


def existing_by_refs(conn: Connection, refs: Sequence[str]) -> dict[str, Any]:
    """ref -> row (uid, ref, location_id, hash, orphan, generation) for the refs that exist."""
    out: dict[str, Any] = {}
    refs = list(refs)
    for i in range(0, len(refs), 500):
        for row in conn.execute(
            select(entities.c.uid, entities.c.ref, entities.c.location_id, entities.c.hash,
                   entities.c.orphan, entities.c.generation, entities.c.errors)
            .where(entities.c.ref.in_(refs[i:i + 500]))
        ):
            out[row.ref] = row
    return out


def refs_of_location(conn: Connection, location_ids: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in conn.execute(
        select(entities.c.uid, entities.c.ref, entities.c.orphan)
        .where(entities.c.location_id.in_(list(location_ids)))
    ):
        out[row.ref] = row
    return out


def insert_entities(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(entities), rows)


def update_entities(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Rows carry ``uid`` plus the columns to change; executed as one executemany."""
    from sqlalchemy import bindparam

    if not rows:
        return
    cols = [k for k in rows[0] if k != "uid"]
    stmt = (update(entities).where(entities.c.uid == bindparam("_uid"))
            .values({c: bindparam(c) for c in cols}))
    conn.execute(stmt, [{**{c: r[c] for c in cols}, "_uid": r["uid"]} for r in rows])


def set_orphan(conn: Connection, uids: Sequence[str], orphan: bool, now: float,
               detach: bool = False) -> None:
    if not uids:
        return
    values: dict[str, Any] = {"orphan": orphan, "updated_at": now}
    if detach:
        values["location_id"] = None
    for i in range(0, len(uids), 500):
        conn.execute(update(entities).where(entities.c.uid.in_(list(uids[i:i + 500]))).values(**values))


def set_entity_errors(conn: Connection, uid: str, errors_json: str) -> None:
    conn.execute(update(entities).where(entities.c.uid == uid).values(errors=errors_json))


def delete_entities(conn: Connection, uids: Sequence[str]) -> None:
    uids = list(uids)
    for i in range(0, len(uids), 500):
        part = uids[i:i + 500]
        conn.execute(delete(relations).where(relations.c.origin_uid.in_(part)))
        conn.execute(delete(search).where(search.c.uid.in_(part)))
        conn.execute(delete(entities).where(entities.c.uid.in_(part)))


def entity_rows(conn: Connection, where: Any, order: Sequence[Any] = (), limit: int | None = None) -> list[Any]:
    q = select(*ENTITY_COLUMNS).where(where)
    if order:
        q = q.order_by(*order)
    if limit is not None:
        q = q.limit(limit)
    return list(conn.execute(q))


def entity_by_ref(conn: Connection, ref: str) -> Any:
    return conn.execute(select(*ENTITY_COLUMNS).where(entities.c.ref == ref)).first()


def entity_by_uid(conn: Connection, uid: str) -> Any:
    return conn.execute(select(*ENTITY_COLUMNS).where(entities.c.uid == uid)).first()


def entities_by_refs(conn: Connection, refs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    refs = list(refs)
    for i in range(0, len(refs), 500):
        for row in conn.execute(select(*ENTITY_COLUMNS).where(entities.c.ref.in_(refs[i:i + 500]))):
            out[row.ref] = row
    return out


def count_entities(conn: Connection, where: Any = None) -> int:
    q = select(func.count()).select_from(entities)
    if where is not None:
        q = q.where(where)
    return int(conn.execute(q).scalar_one())


# --- relations and search rows ---------------------------------------------------------------

RELATION_COLUMNS = ("origin_uid", "source", "type", "target")
SEARCH_COLUMNS = ("uid", "key", "value", "original")


def replace_relations(conn: Connection, origin_uids: Sequence[str], rows: list[tuple[str, str, str, str]],
                      fresh: bool = False) -> None:
    """Replace the relations emitted by ``origin_uids``; ``fresh`` when none can exist yet."""
    uids = list(origin_uids)
    if not fresh:
        for i in range(0, len(uids), 500):
            conn.execute(delete(relations).where(relations.c.origin_uid.in_(uids[i:i + 500])))
    bulk_insert(conn, relations, RELATION_COLUMNS, rows)


def relations_of(conn: Connection, refs: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """source ref -> sorted unique [(type, target)] for the given refs."""
    out: dict[str, set[tuple[str, str]]] = {}
    refs = list(refs)
    for i in range(0, len(refs), 500):
        for row in conn.execute(
            select(relations.c.source, relations.c.type, relations.c.target)
            .where(relations.c.source.in_(refs[i:i + 500]))
        ):
            out.setdefault(row.source, set()).add((row.type, row.target))
    return {k: sorted(v) for k, v in out.items()}


def replace_search(conn: Connection, uids: Sequence[str], rows: list[tuple[Any, ...]],
                   fresh: bool = False) -> None:
    uids = list(uids)
    if not fresh:
        for i in range(0, len(uids), 500):
            conn.execute(delete(search).where(search.c.uid.in_(uids[i:i + 500])))
    bulk_insert(conn, search, SEARCH_COLUMNS, rows)


# --- filters, flattening ---------------------------------------------------------------------

_COLUMN_FILTERS = {"kind": "kind", "metadata.namespace": "namespace", "metadata.name": "name"}


def filter_clause(any_of: list[dict[str, list[str] | None]]) -> Any:
    """Compile Backstage's filter (a list of alternatives, each a map of key -> accepted values,
    None meaning "the key exists") into a condition on ``catalog_entities``.

    ``relations.<type>`` keys are answered from the relations table, so relations emitted by other
    entities count too. Values compare case-insensitively. Every value is a bound parameter.
    """
    alternatives = []
    for all_of in any_of:
        conds = []
        for key, values in all_of.items():
            key = key.lower()
            if key.startswith("relations."):
                rtype = key.removeprefix("relations.")
                sub = select(relations.c.source).where(func.lower(relations.c.type) == rtype)
                if values is not None:
                    sub = sub.where(relations.c.target.in_([v.lower() for v in values]))
                conds.append(entities.c.ref.in_(sub))
                continue
            column = _COLUMN_FILTERS.get(key)
            if column is not None:
                if values is not None:
                    conds.append(entities.c[column].in_([v.lower() for v in values]))
                continue
            sub = select(search.c.uid).where(search.c.key == key)
            if values is not None:
                sub = sub.where(search.c.value.in_([v.lower() for v in values]))
            conds.append(entities.c.uid.in_(sub))
        alternatives.append(and_(*conds) if conds else True)
    return or_(*alternatives) if alternatives else True


def _full_text_uids(term: str, fields: Sequence[str] | None) -> Any:
    sub = select(search.c.uid).where(
        search.c.value.contains(term.lower(), autoescape=True)
    )
    if fields:
        sub = sub.where(search.c.key.in_([f.lower() for f in fields]))
    return sub


def full_text_clause(term: str, fields: Sequence[str] | None) -> Any:
    """``value LIKE %term%`` on the given keys (any key when none), escaping LIKE wildcards."""
    return entities.c.uid.in_(_full_text_uids(term, fields))


def full_text_clause_for(conn: Connection, term: str, fields: Sequence[str] | None, most: int = 1000) -> Any:
    """:func:`full_text_clause`, with the substring scan (the expensive part: every search row of
    the fields) run once here rather than once for the count and once for the page. Falls back
    to the subquery when more than ``most`` entities match."""
    uids = list(conn.execute(_full_text_uids(term, fields).distinct().limit(most + 1)).scalars())
    if len(uids) > most:
        return full_text_clause(term, fields)
    return entities.c.uid.in_(uids)


_COLUMN_ORDER = {"kind": entities.c.kind, "metadata.name": entities.c.name,
                 "metadata.namespace": entities.c.namespace}


def order_expressions(order: Sequence[tuple[str, str]]) -> list[Any]:
    """ORDER BY terms for Backstage's ``orderField``: by the field's value, entities without it last,
    ties broken by ref so paging is stable."""
    terms: list[Any] = []
    for field_name, direction in order:
        key = field_name.lower()
        col = _COLUMN_ORDER.get(key)
        if col is None:
            col = (select(func.min(search.c.value)).where(search.c.uid == entities.c.uid)
                   .where(search.c.key == key).scalar_subquery())
            terms.append(col.is_(None))
        terms.append(col.desc() if direction == "desc" else col.asc())
    terms.extend((entities.c.kind, entities.c.namespace, entities.c.name))
    return terms


def query_page(conn: Connection, where: Any, order: Sequence[tuple[str, str]], limit: int,
               offset: int) -> list[Any]:
    q = select(*ENTITY_COLUMNS).where(where).order_by(*order_expressions(order)).limit(limit).offset(offset)
    return list(conn.execute(q))


def managed_by_prefix(prefix: str) -> Any:
    """Entities whose ``backstage.io/managed-by-location`` starts with ``prefix``."""
    return entities.c.uid.in_(
        select(search.c.uid)
        .where(search.c.key == "metadata.annotations.backstage.io/managed-by-location")
        .where(search.c.original.startswith(prefix, autoescape=True))
    )


def facet_original_counts(conn: Connection, key: str, where: Any) -> list[tuple[str, int]]:
    """Facet values (as written) with the number of matching entities having each. Counting runs
    on the covering (key, value, uid) index; the written form is looked up once per value."""
    key = key.lower()
    if key in _COLUMN_FILTERS and key != "metadata.name":
        col = entities.c[_COLUMN_FILTERS[key]]
        q = select(col, func.count()).group_by(col)
        if where is not True:
            q = q.where(where)
        counted = [(r[0], int(r[1])) for r in conn.execute(q)]
    else:
        q = (select(search.c.value, func.count(func.distinct(search.c.uid)))
             .where(search.c.key == key).where(search.c.value.is_not(None)))
        if where is not True:
            q = q.where(search.c.uid.in_(select(entities.c.uid).where(where)))
        counted = [(r[0], int(r[1])) for r in conn.execute(q.group_by(search.c.value))]
    out = []
    for value, count in counted:
        original = conn.execute(
            select(search.c.original).where(search.c.key == key).where(search.c.value == value).limit(1)
        ).scalar()
        out.append((original or value, count))
    return out

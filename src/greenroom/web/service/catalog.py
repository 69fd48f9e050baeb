"""Page data read through the catalog service: the list with facets, the entity page, ownership
of groups and users, the relationship graph, registration and locations.

Everything here goes through :class:`greenroom.catalog.service.CatalogService`; no SQL. Lists are
bounded (pages of at most 100, ownership views of at most ``OWNED_LIMIT``) so a page stays cheap
on a catalog of 100k entities.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from greenroom.catalog.service import CatalogService, EntityQuery
from greenroom.core.errors import InputError
from greenroom.web.engine import graph as graph_engine
from greenroom.web.model import FORWARD, RELATION_LABELS, RELATION_PAIRS, REVERSE, Ref, entity_ref, parse_ref

# URL parameter -> catalog filter key. Facet counts use the same keys.
FILTERS: dict[str, str] = {
    "kind": "kind", "type": "spec.type", "owner": "spec.owner", "lifecycle": "spec.lifecycle",
    "namespace": "metadata.namespace", "tag": "metadata.tags", "system": "spec.system",
    "ownedby": "relations.ownedBy",  # full refs (links from home and group pages); no facet
}
FACETS = [k for k in FILTERS if k != "ownedby"]
FILTER_LABELS = {"kind": "Kind", "type": "Type", "owner": "Owner", "lifecycle": "Lifecycle",
                 "namespace": "Namespace", "tag": "Tags", "system": "System", "ownedby": "Owned by"}
# Sortable columns -> catalog order field.
SORTS: dict[str, str] = {"name": "metadata.name", "kind": "kind", "type": "spec.type",
                         "owner": "spec.owner", "system": "spec.system", "lifecycle": "spec.lifecycle"}
# Orders the catalog answers from its own columns; the others are sorted here, on result sets
# of at most SORT_IN_PAGE_LIMIT (the catalog's field ordering costs O(matches x rows) today).
COLUMN_SORTS = {"name", "kind"}
SORT_IN_PAGE_LIMIT = 1000
FACET_TTL_S = 30.0
FACET_CACHE_SIZE = 512
RECENT_KEEP = 200
TEXT_FIELDS = ["metadata.name", "metadata.title", "metadata.description"]
PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
OWNED_LIMIT = 50
MAX_GROUPS = 500
LIST_FIELDS = ["kind", "metadata.name", "metadata.namespace", "metadata.title", "metadata.description",
               "metadata.tags", "spec.type", "spec.owner", "spec.lifecycle", "spec.system"]
SUMMARY_FIELDS = ["kind", "metadata.name", "metadata.namespace", "metadata.title", "spec.type",
                  "spec.profile.displayName"]
GRAPH_FIELDS = ["kind", "metadata.name", "metadata.namespace", "metadata.title", "relations"]


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if raw.startswith("o") and raw[1:].isdigit():
            return int(raw[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InputError("This page link is broken (bad cursor); go back to the first page")


@dataclass
class ListParams:
    """The catalog list state, all of it in the URL so a view can be shared."""

    filters: dict[str, list[str]] = field(default_factory=dict)
    text: str = ""
    sort: str = "name"
    desc: bool = False
    offset: int = 0
    limit: int = PAGE_SIZE

    @classmethod
    def from_query(cls, multi: Mapping[str, list[str]]) -> ListParams:
        filters = {k: [v for v in multi.get(k, []) if v] for k in FILTERS}
        sort = (multi.get("sort") or ["name"])[0]
        try:
            limit = min(max(int((multi.get("limit") or [str(PAGE_SIZE)])[0]), 1), MAX_PAGE_SIZE)
        except ValueError:
            limit = PAGE_SIZE
        return cls(filters={k: v for k, v in filters.items() if v},
                   text=(multi.get("q") or [""])[0].strip()[:200],
                   sort=sort if sort in SORTS else "name",
                   desc=(multi.get("dir") or ["asc"])[0] == "desc",
                   offset=decode_cursor((multi.get("cursor") or [""])[0]), limit=limit)

    def query_pairs(self, **change: Any) -> list[tuple[str, str]]:
        """URL parameters of this state with ``change`` applied (None removes a key)."""
        state: dict[str, Any] = {**{k: list(v) for k, v in self.filters.items()}, "q": self.text,
                                 "sort": self.sort if self.sort != "name" else "",
                                 "dir": "desc" if self.desc else "", "cursor": ""}
        state.update(change)
        pairs: list[tuple[str, str]] = []
        for k, v in state.items():
            for item in (v if isinstance(v, list) else [v]):
                if item not in (None, ""):
                    pairs.append((k, str(item)))
        return pairs

    def catalog_filters(self, skip: str | None = None) -> list[dict[str, list[str] | None]]:
        one: dict[str, list[str] | None] = {FILTERS[k]: v for k, v in self.filters.items() if k != skip}
        return [one] if one else []


@dataclass
class Related:
    ref: Ref
    title: str
    kind: str
    exists: bool


class FacetCache:
    """Facet counts by filter, kept ``FACET_TTL_S`` and dropped on any catalog change.

    Facet counts are the costly part of the list (a GROUP BY over the catalog's search rows per
    facet); they change only when the catalog does, and the catalog tells its listeners. Other
    replicas' changes show up within the TTL.
    """

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._listening: set[int] = set()
        # Refs changed since this process started, newest last: the home page's fallback for
        # "recently changed" when the catalog service offers no ``recent(limit)``.
        self.changed: deque[str] = deque(maxlen=RECENT_KEEP)

    def attach(self, catalog: CatalogService) -> None:
        if id(catalog) not in self._listening:
            self._listening.add(id(catalog))
            catalog.add_listener(self._on_change)

    def _on_change(self, changed: list[str], removed: list[str]) -> None:
        self.clear()
        gone = set(removed)
        with self._lock:
            if gone:
                kept = [r for r in self.changed if r not in gone]
                self.changed.clear()
                self.changed.extend(kept)
            self.changed.extend(changed[-RECENT_KEEP:])

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def get(self, key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        now = time.monotonic()
        hit = self._data.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = compute()
        with self._lock:
            if len(self._data) >= FACET_CACHE_SIZE:
                self._data.clear()
            self._data[key] = (now + FACET_TTL_S, value)
        return value


class CatalogPages:
    def __init__(self, catalog: CatalogService, facet_cache: FacetCache | None = None) -> None:
        self.catalog = catalog
        self.cache = facet_cache or FacetCache()
        self.cache.attach(catalog)

    # --- list ----------------------------------------------------------------------------------

    def list_page(self, p: ListParams) -> dict[str, Any]:
        direction = "desc" if p.desc else "asc"
        q = EntityQuery(filters=p.catalog_filters(),
                        order=[(SORTS[p.sort], direction)] if p.sort in COLUMN_SORTS else [("metadata.name", direction)],
                        full_text_term=p.text or None, full_text_fields=TEXT_FIELDS if p.text else None,
                        fields=LIST_FIELDS, limit=p.limit, offset=p.offset)
        sort_note = None
        if p.sort in COLUMN_SORTS:
            page = self.catalog.query(q)
            rows, total, nxt, prev = page.items, page.total, page.next_offset, page.prev_offset
        else:
            rows, total, nxt, prev, sort_note = self._sorted_here(p, q)
        return {"rows": rows, "total": total, "sort_note": sort_note,
                "next": encode_cursor(nxt) if nxt is not None else None,
                "prev": (encode_cursor(prev) if prev else "") if prev is not None else None,
                "facets": self.facets(p)}

    def _sorted_here(self, p: ListParams, q: EntityQuery) -> tuple[list[dict[str, Any]], int, int | None,
                                                                    int | None, str | None]:
        count = self.catalog.query(EntityQuery(filters=q.filters, full_text_term=q.full_text_term,
                                               full_text_fields=q.full_text_fields, limit=0)).total
        if count > SORT_IN_PAGE_LIMIT:
            page = self.catalog.query(q)
            note = (f"Sorted by name: sorting by {p.sort} works on up to {SORT_IN_PAGE_LIMIT:,} "
                    f"entities and {count:,} match; add a filter to narrow the list.")
            return page.items, page.total, page.next_offset, page.prev_offset, note
        everything = self.catalog.query(EntityQuery(
            filters=q.filters, full_text_term=q.full_text_term, full_text_fields=q.full_text_fields,
            order=[("metadata.name", "asc")], fields=LIST_FIELDS, limit=max(count, 1))).items
        field_name = SORTS[p.sort].split(".")[-1]
        present = [e for e in everything if (e.get("spec") or {}).get(field_name) not in (None, "")]
        missing = [e for e in everything if (e.get("spec") or {}).get(field_name) in (None, "")]
        present.sort(key=lambda e: str(e["spec"][field_name]).lower(), reverse=p.desc)
        ordered = present + missing  # entities without the field last, as the catalog orders
        rows = ordered[p.offset:p.offset + p.limit]
        nxt = p.offset + p.limit if p.offset + p.limit < count else None
        prev = max(p.offset - p.limit, 0) if p.offset > 0 else None
        return rows, count, nxt, prev, None

    def facets(self, p: ListParams) -> dict[str, list[dict[str, Any]]]:
        """Counts per value for every filter, each under the other filters (so values of one
        filter can be combined). Selected values are always listed, even at zero."""
        out: dict[str, list[dict[str, Any]]] = {}
        unfiltered: list[str] = [k for k in FACETS if k not in p.filters]
        # One call for all facets not filtered themselves: they share the same condition.
        if unfiltered:
            filters = p.catalog_filters()
            got = self.cache.get(repr(("all", unfiltered, filters)), lambda: self.catalog.facets(
                [FILTERS[k] for k in unfiltered], filters)["facets"])
            for k in unfiltered:
                out[k] = got.get(FILTERS[k], [])
        for k in p.filters:
            if k not in FACETS:
                continue
            others = p.catalog_filters(skip=k)
            got = self.cache.get(repr((k, others)), lambda k=k, others=others: self.catalog.facets(  # type: ignore[misc]
                [FILTERS[k]], others)["facets"])
            values = list(got.get(FILTERS[k], []))
            have = {v["value"].lower() for v in values}
            values += [{"value": v, "count": 0} for v in p.filters[k] if v.lower() not in have]
            out[k] = values
        return out

    # --- home ----------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Catalog health counts (full scans at 100k entities), kept like facet counts."""
        return self.cache.get("stats", self.catalog.stats)

    def my_groups(self, subject: str) -> list[str]:
        """Group refs the user entity ``subject`` is a member of (its memberOf relations)."""
        if not subject.startswith("user:"):
            return []
        user = self.catalog.get_entity(subject)
        if user is None:
            return []
        return sorted({r["targetRef"] for r in user.get("relations", []) if r.get("type") == "memberOf"})

    def owned_by(self, owners: Sequence[str], limit: int = OWNED_LIMIT) -> tuple[list[dict[str, Any]], int]:
        if not owners:
            return [], 0
        page = self.catalog.query(EntityQuery(filters=[{"relations.ownedBy": list(owners)}],
                                              order=[("metadata.name", "asc")], fields=LIST_FIELDS + ["relations"],
                                              limit=limit))
        return page.items, page.total

    def recent(self, limit: int = 8) -> list[dict[str, Any]]:
        """Most recently changed entities, newest first."""
        recent = getattr(self.catalog, "recent", None)
        if callable(recent):
            return list(recent(limit))
        refs: list[str] = []
        for ref in reversed(self.cache.changed):
            if ref not in refs and not ref.startswith("location:"):
                refs.append(ref)
            if len(refs) == limit:
                break
        return [e for e in self.catalog.by_refs(refs, LIST_FIELDS) if e is not None]

    # --- entity page ---------------------------------------------------------------------------

    def summaries(self, refs: Iterable[str]) -> dict[str, Related]:
        """Title and existence of each ref, in one batch (dangling refs are normal in a catalog)."""
        wanted = sorted(set(refs))
        found = self.catalog.by_refs(wanted, SUMMARY_FIELDS) if wanted else []
        out: dict[str, Related] = {}
        for ref, entity in zip(wanted, found, strict=True):
            r = parse_ref(ref)
            if entity is None:
                out[ref] = Related(r, r.short, r.kind, False)
                continue
            meta = entity.get("metadata") or {}
            title = ((entity.get("spec") or {}).get("profile") or {}).get("displayName") or meta.get("title")
            out[ref] = Related(r, str(title or meta.get("name") or r.name), str(entity.get("kind", r.kind)), True)
        return out

    def relations(self, entity: Mapping[str, Any]) -> list[tuple[str, str, list[Related]]]:
        """(type, label, related entities) in a fixed, readable order."""
        grouped: dict[str, list[str]] = {}
        for rel in entity.get("relations") or []:
            grouped.setdefault(str(rel.get("type")), []).append(str(rel.get("targetRef")))
        info = self.summaries(t for targets in grouped.values() for t in targets)
        order = list(RELATION_LABELS)
        out = []
        for rtype in sorted(grouped, key=lambda t: (order.index(t) if t in order else 99, t)):
            items = sorted((info[t] for t in set(grouped[rtype])), key=lambda r: (r.kind, r.title.lower()))
            out.append((rtype, RELATION_LABELS.get(rtype, rtype), items))
        return out

    def location_row_for(self, ref: str) -> dict[str, Any] | None:
        """The location a Location entity stands for (for refresh/unregister buttons)."""
        for row in self.catalog.list_locations(roots_only=False):
            if (row.get("entity_ref") or "").lower() == ref.lower():
                return row
        return None

    def descendant_groups(self, group: str) -> list[str]:
        """The group and every group below it (parentOf, breadth-first, cycle-safe, bounded)."""
        seen = [group]
        frontier = [group]
        while frontier and len(seen) < MAX_GROUPS:
            nxt: list[str] = []
            for entity in self.catalog.by_refs(frontier, ["relations"]):
                for rel in (entity or {}).get("relations", []):
                    t = rel.get("targetRef")
                    if rel.get("type") == "parentOf" and t not in seen:
                        seen.append(t)
                        nxt.append(t)
            frontier = nxt
        return seen

    # --- graph ---------------------------------------------------------------------------------

    def graph(self, root: Mapping[str, Any], depth: int, types: set[str], max_nodes: int = 150) -> str:
        """The relationship graph around ``root`` as SVG: ``depth`` hops along relation pairs in
        ``types`` (forward names), each pair drawn once in its forward direction."""
        wanted = {t for t in types if t in FORWARD} | {REVERSE[t] for t in types if t in FORWARD}
        root_ref = entity_ref(root).ref
        entities: dict[str, Mapping[str, Any] | None] = {root_ref: root}
        dist = {root_ref: 0}
        edges: set[tuple[str, str, str]] = set()
        frontier = [root_ref]
        for d in range(1, depth + 1):
            nxt: list[str] = []
            for ref in frontier:
                for rel in (entities.get(ref) or {}).get("relations", []):
                    rtype, target = str(rel.get("type")), str(rel.get("targetRef"))
                    if rtype not in wanted:
                        continue
                    if rtype in FORWARD:
                        edges.add((ref, target, rtype))
                    else:
                        edges.add((target, ref, REVERSE[rtype]))
                    if target not in dist and len(dist) < max_nodes:
                        dist[target] = d
                        nxt.append(target)
            if not nxt:
                break
            for ref, entity in zip(nxt, self.catalog.by_refs(nxt, GRAPH_FIELDS), strict=True):
                entities[ref] = entity
            frontier = nxt
        nodes = []
        for ref, d in dist.items():
            e = entities.get(ref)
            r = parse_ref(ref)
            meta = (e or {}).get("metadata") or {}
            nodes.append(graph_engine.Node(ref=ref, label=str(meta.get("title") or meta.get("name") or r.name),
                                           kind=str((e or {}).get("kind") or r.kind).lower(),
                                           href=r.path, distance=d))
        return graph_engine.render_svg(nodes, [graph_engine.Edge(s, t, lbl) for s, t, lbl in edges], root_ref)


GRAPH_TYPES: list[tuple[str, str]] = [(a, RELATION_LABELS[a]) for a, _ in RELATION_PAIRS]

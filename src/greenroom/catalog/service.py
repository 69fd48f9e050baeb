"""Catalog use cases: register and read locations, process them, and answer entity queries.

Processing model. A location row is claimed with a lease, its target is read by the engine
(no database), and everything it produced is written in ONE transaction: entities (skipped when
their hash is unchanged), both directions of their relations, search rows, problems, child
locations, orphan flags, and the row's own bookkeeping. A process that dies mid-way leaves the
previous state intact and the lease expires, so another worker (or the next start) does the whole
location again; reruns give the same rows. Registration processes the new location and all its
descendants before answering, so its entities are readable the moment the call returns.

Conflicts are deterministic: an entity ref already held by another location that still emits
it stays with that location, and the newcomer gets an error naming both.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from greenroom.catalog import engine as catalog_engine
from greenroom.catalog import store
from greenroom.catalog.model import (
    ANNOTATION_LOCATION,
    ANNOTATION_ORIGIN_LOCATION,
    ANNOTATION_ORPHAN,
    DEFAULT_NAMESPACE,
    LocationSpec,
    ProcessedEntity,
    ProcessingProblem,
    ProcessingResult,
)
from greenroom.core.config import Settings
from greenroom.core.db import reading, transaction
from greenroom.core.errors import (
    ConflictError,
    GreenroomError,
    InputError,
    NotAllowedError,
    NotFoundError,
)
from greenroom.core.logs import event

log = logging.getLogger("greenroom.catalog")

Listener = Callable[[list[str], list[str]], None]

READ_AHEAD = 2  # locations read ahead of the writer at most
ANALYZE_AFTER = 5000  # entities added or removed by one tree after which statistics are refreshed
LISTENER_DELAY_S = 30.0  # longest time listeners are held back while locations are processed


@dataclass
class EntityQuery:
    """A structured entity query: ``filters`` is a list of alternatives (OR), each a map of
    key -> accepted values (AND between keys; None means the key must exist)."""

    filters: list[dict[str, list[str] | None]] = field(default_factory=list)
    order: list[tuple[str, str]] = field(default_factory=list)
    full_text_term: str | None = None
    full_text_fields: list[str] | None = None
    fields: list[str] | None = None
    limit: int | None = None
    offset: int = 0


@dataclass
class QueryPage:
    items: list[dict[str, Any]]
    total: int
    next_offset: int | None
    prev_offset: int | None


_uid_lock = threading.Lock()
_uid_last = [0]


def new_uid() -> str:
    """A UUID version 7: 48 bits of milliseconds, then random bits, as RFC 9562 lays out.

    Entity uids are opaque to clients (any UUID will do), but time-ordered ones are appended at
    the right edge of every index that starts with ``uid`` instead of landing on random pages,
    which halves the pages a large ingest transaction dirties (and the WAL it writes)."""
    with _uid_lock:
        ms = max(time.time_ns() // 1_000_000, _uid_last[0])
        _uid_last[0] = ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def location_key(spec: LocationSpec) -> str:
    return hashlib.sha1(f"{spec.type}:{spec.target}".encode()).hexdigest()


def generated_location_entity(spec: LocationSpec) -> dict[str, Any]:
    """The Location entity Backstage generates for a registered location."""
    ref = f"{spec.type}:{spec.target}"
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {
            "name": f"generated-{location_key(spec)}",
            "namespace": DEFAULT_NAMESPACE,
            "annotations": {ANNOTATION_LOCATION: ref, ANNOTATION_ORIGIN_LOCATION: ref},
        },
        "spec": {"type": spec.type, "target": spec.target},
    }


def _targets_of(entity: dict[str, Any], base: LocationSpec) -> list[LocationSpec]:
    """Where a Location entity points, resolved against the file it was read from."""
    spec = entity.get("spec") or {}
    raw = ([spec["target"]] if isinstance(spec.get("target"), str) else []) + [
        t for t in (spec.get("targets") or []) if isinstance(t, str)
    ]
    kind = spec.get("type") or base.type
    out = []
    for t in raw:
        if kind == "file" and base.type == "file":
            target = t if posixpath.isabs(t) else posixpath.normpath(
                posixpath.join(posixpath.dirname(base.target), t))
        elif base.type == "url" and kind == "url":
            target = urljoin(base.target, t)
        else:
            target = t
        out.append(LocationSpec(kind, target))
    return out


UrlReader = Callable[[str], "bytes | None"]


class _ReaderTransport(httpx.BaseTransport):
    """Answers URLs that an in-process reader knows (the portal's own git host) without a
    network round trip or credentials; everything else goes out over HTTP as usual."""

    def __init__(self, readers: Sequence[UrlReader]) -> None:
        self.readers = list(readers)
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        for read in self.readers:
            try:
                data = read(url)
            except NotFoundError as e:
                return httpx.Response(404, text=e.message, request=request)
            except GreenroomError as e:
                return httpx.Response(e.status_code, text=e.message, request=request)
            if data is not None:
                return httpx.Response(200, content=data, request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class CatalogService:
    def __init__(self, engine: Engine, settings: Settings, *,
                 url_readers: Sequence[UrlReader] = ()) -> None:
        self.engine = engine
        self.settings = settings
        self.http = httpx.Client(transport=_ReaderTransport(url_readers), timeout=10,
                                 follow_redirects=False)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.policy = catalog_engine.DefaultReadPolicy(
            [a.model_dump() for a in settings.backend.reading.allow], settings.backend.baseUrl
        )
        kinds = {k for rule in settings.catalog.rules for k in rule.allow}
        self.allowed_kinds = {k.lower() for k in kinds}
        self.listeners: list[Listener] = []
        self._pending_lock = threading.Lock()
        self._pending_changed: set[str] = set()
        self._pending_removed: set[str] = set()
        self._dispatcher: threading.Thread | None = None
        self._working = 0  # process_tree/process_due calls running in this process
        self._trees = 0  # process_tree calls running in this process
        self._cache = _AnswerCache()
        self._flushing = False

    # --- listeners ---------------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """``fn(changed_refs, removed_refs)`` is called after each committed change."""
        self.listeners.append(fn)

    def _notify(self, changed: list[str], removed: list[str]) -> None:
        """Hand a committed change to the listeners on a background thread, so that indexing
        and docs builds never slow ingestion down. Bursts are merged."""
        if not (changed or removed) or not self.listeners:
            return
        with self._pending_lock:
            self._pending_changed.update(changed)
            self._pending_changed.difference_update(removed)
            self._pending_removed.update(removed)
            self._pending_removed.difference_update(changed)
            if self._dispatcher is None or not self._dispatcher.is_alive():
                self._dispatcher = threading.Thread(target=self._dispatch, name="catalog-listeners",
                                                    daemon=True)
                self._dispatcher.start()

    @contextmanager
    def _busy(self, tree: bool = False) -> Iterator[None]:
        """Marks ingestion in progress: listeners wait for it (see :meth:`_dispatch`)."""
        with self._pending_lock:
            self._working += 1
            self._trees += tree
        try:
            yield
        finally:
            with self._pending_lock:
                self._working -= 1
                self._trees -= tree

    def _dispatch(self) -> None:
        # While locations are being processed, changes are held back (at most LISTENER_DELAY_S):
        # the listeners (search index, docs builds) would otherwise take CPU and the SQLite
        # write lock from ingestion, chunk by chunk, and see each entity once per burst anyway.
        held_since = time.monotonic()
        while True:
            with self._pending_lock:
                hold = self._working > 0 and not self._flushing
            if hold and time.monotonic() - held_since < LISTENER_DELAY_S:
                time.sleep(0.05)
                continue
            with self._pending_lock:
                changed = sorted(self._pending_changed)
                removed = sorted(self._pending_removed)
                self._pending_changed.clear()
                self._pending_removed.clear()
                if not (changed or removed):
                    self._dispatcher = None
                    return
            for i in range(0, max(len(changed), len(removed)), 1000):
                for fn in self.listeners:
                    try:
                        fn(changed[i:i + 1000], removed[i:i + 1000])
                    except Exception:  # noqa: BLE001 - a listener must not undo a committed change
                        log.exception("catalog.listener_failed")

    def flush_listeners(self, timeout: float = 30) -> None:
        """Wait until every change so far has reached the listeners (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        self._flushing = True
        try:
            while time.monotonic() < deadline:
                with self._pending_lock:
                    idle = self._dispatcher is None and not self._pending_changed and not self._pending_removed
                if idle:
                    return
                time.sleep(0.02)
        finally:
            self._flushing = False

    # --- locations ---------------------------------------------------------------------------

    def _spec(self, type_: str, target: str, *, base_dir: str | None = None) -> LocationSpec:
        if type_ not in ("file", "url"):
            raise InputError(f"location type {type_!r} is not supported; use 'file' or 'url'")
        if not target or not isinstance(target, str):
            raise InputError("location target: required; give a path or a URL")
        if type_ == "file":
            path = os.path.abspath(os.path.join(base_dir or os.getcwd(), os.path.expanduser(target)))
            self._check_file_root(path)
            return LocationSpec("file", path)
        if not target.startswith(("http://", "https://")):
            raise InputError(f"url location {target!r}: must start with http:// or https://")
        self.policy.check_url(target)
        return LocationSpec("url", target)

    def _check_file_root(self, path: str) -> None:
        """Anyone who may register a location must not be able to make the portal read any file
        on the server: ``file`` targets registered at run time must lie under
        ``backend.reading.allowFiles`` (configured locations are trusted as they are)."""
        real = os.path.realpath(path)
        for root in self.settings.backend.reading.allowFiles:
            base = os.path.realpath(str(self.settings.resolve_path(root)))
            if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
                return
        raise NotAllowedError(
            f"file location {path}: not under backend.reading.allowFiles; add its folder there "
            "(or list it in catalog.locations, or register a url location instead)")

    def _root_row(self, spec: LocationSpec, origin: str, position: int, now: float) -> dict[str, Any]:
        loc_id = str(uuid.uuid4())
        return {
            "id": loc_id, "type": spec.type, "target": spec.target, "key": location_key(spec),
            "parent_id": None, "root_id": loc_id, "origin": origin,
            "entity_ref": f"location:default/generated-{location_key(spec)}",
            "position": position, "created_at": now, "next_refresh_at": now, "status": "pending",
            "errors": "[]",
        }

    def ensure_config_locations(self) -> list[str]:
        """Insert the configured locations (in order) that are not there yet; return their ids."""
        ids = []
        now = time.time()
        with transaction(self.engine) as conn:
            pos = store.max_position(conn)
            for loc in self.settings.catalog.locations:
                target = (str(self.settings.resolve_path(loc.target)) if loc.type == "file"
                          else loc.target)
                spec = LocationSpec(loc.type, target)
                row = store.get_location_by_key(conn, location_key(spec))
                if row is None:
                    pos += 1
                    row = self._root_row(spec, "config", pos, now)
                    store.insert_location(conn, row)
                ids.append(row["id"])
        return ids

    def register_location(self, type_: str, target: str, *, dry_run: bool = False,
                          on_conflict: str = "reject") -> dict[str, Any]:
        """POST /locations: store the location, then read it and everything below it before
        answering. ``dry_run`` reads without storing anything."""
        spec = self._spec(type_, target)
        if dry_run:
            return self._dry_run(spec)
        now = time.time()
        for attempt in range(3):
            try:
                with transaction(self.engine) as conn:
                    existing = store.get_location_by_key(conn, location_key(spec))
                    if existing is not None:
                        if on_conflict != "refresh":
                            raise ConflictError(f"Location {spec} already exists")
                        row = existing
                    else:
                        row = self._root_row(spec, "api", store.max_position(conn) + 1, now)
                        store.insert_location(conn, row)
                break
            except IntegrityError:
                # The same location registered concurrently (PostgreSQL, read committed): the
                # other request won; look again and answer as for an existing location.
                if attempt == 2:
                    raise
        self.process_tree(row["id"])
        # Like Backstage, answer with what the registered file itself holds (a tree of
        # thousands is readable through the query API the moment this returns).
        with reading(self.engine) as conn:
            rows = store.entity_rows(conn, store.entities.c.location_id == row["id"],
                                     order=[store.entities.c.ref])
            entities = self._stitch(conn, rows)
        return {"location": self._location_out(row), "entities": entities,
                **({"exists": True} if existing is not None else {})}

    def _dry_run(self, spec: LocationSpec) -> dict[str, Any]:
        entities: list[dict[str, Any]] = [generated_location_entity(spec)]
        problems: list[ProcessingProblem] = []
        seen = {location_key(spec)}
        queue = [spec]
        while queue and len(seen) < 1000:
            current = queue.pop(0)
            result = self._read(current, spec)
            problems.extend(result.problems)
            for pe in result.entities:
                entities.append(pe.entity)
            for child in result.locations:
                if location_key(child) not in seen:
                    seen.add(location_key(child))
                    queue.append(child)
        if problems and not entities[1:]:
            raise InputError("; ".join(p.message for p in problems[:10]))
        with reading(self.engine) as conn:
            existing = store.get_location_by_key(conn, location_key(spec))
        out: dict[str, Any] = {
            "location": {"id": existing["id"] if existing else "", "type": spec.type,
                         "target": spec.target,
                         "entityRef": f"location:default/generated-{location_key(spec)}"},
            "entities": entities, "exists": existing is not None,
        }
        if problems:
            out["errors"] = [p.as_status_item()["error"] for p in problems]
        return out

    @staticmethod
    def _root_dir(origin: LocationSpec) -> str:
        return posixpath.dirname(origin.target) if origin.type == "file" else origin.target.rsplit("/", 1)[0]

    def _read(self, spec: LocationSpec, origin: LocationSpec) -> ProcessingResult:
        return catalog_engine.process_location(
            spec, origin=origin, policy=self.policy, root=self._root_dir(origin),
            allowed_kinds=self.allowed_kinds, http=self.http,
        )

    @staticmethod
    def _location_out(row: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "type": row["type"], "target": row["target"],
                "entityRef": row["entity_ref"] or ""}

    def list_locations(self, roots_only: bool = True) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            return store.list_locations(conn, roots_only=roots_only)

    def get_location(self, location_id: str) -> dict[str, Any]:
        with reading(self.engine) as conn:
            row = store.get_location(conn, location_id)
        if row is None:
            raise NotFoundError(f"Found no location with ID {location_id}")
        return row

    def location_for_entity(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        ref = f"{kind}:{namespace}/{name}".lower()
        with reading(self.engine) as conn:
            row = store.entity_by_ref(conn, ref)
            if row is None or row.location_id is None:
                raise NotFoundError(f"No location found for entity {ref}")
            loc = store.get_location(conn, row.location_id)
            root = store.get_location(conn, loc["root_id"]) if loc else None
        if root is None:
            raise NotFoundError(f"No location found for entity {ref}")
        return root

    def delete_location(self, location_id: str, *, delete_entities: bool = False) -> list[str]:
        """Unregister a root location. Its entities become orphans (as in Backstage), or are
        deleted when ``delete_entities``. Returns the refs affected."""
        now = time.time()
        with transaction(self.engine) as conn:
            row = store.get_location(conn, location_id)
            if row is None:
                raise NotFoundError(f"Found no location with ID {location_id}")
            ids = store.subtree_ids(conn, location_id)
            # Lock the rows first, in one order, as processing does: a location being written
            # finishes before it is removed, and the two never deadlock.
            store.lock_locations(conn, ids)
            owned = store.refs_of_location(conn, ids)
            uids = [r.uid for r in owned.values()]
            if delete_entities:
                store.delete_entities(conn, uids)
            else:
                store.set_orphan(conn, uids, True, now, detach=True)
            store.delete_locations(conn, ids)
            store.bump_version(conn)
        refs = sorted(owned)
        self._notify([] if delete_entities else refs, refs if delete_entities else [])
        return refs

    def entities_of_location(self, location_id: str) -> list[str]:
        with reading(self.engine) as conn:
            return sorted(store.refs_of_location(conn, store.subtree_ids(conn, location_id)))

    # --- processing --------------------------------------------------------------------------

    def process_tree(self, location_id: str, deadline_s: float = 600, *, due_only: bool = False) -> None:
        """Process a location and then every location below it, now. A location another worker
        holds is waited for; if that worker died, its lease runs out and we take over.
        ``due_only`` (start-up) skips locations another replica has just read.

        Child file locations are read ahead on the second core (see ``engine.parallel``) while
        this thread writes; leases are still claimed here, one location at a time."""
        queue = [location_id]
        stop_at = time.monotonic() + deadline_s
        since = time.time()
        specs: dict[str, tuple[LocationSpec, LocationSpec]] = {}  # queued id -> (location, origin)
        with reading(self.engine) as conn:
            count_before = store.count_entities(conn)
        with self._busy(tree=True), catalog_engine.ReadAhead() as ahead:
            while queue and time.monotonic() < stop_at:
                current = queue.pop(0)
                specs.pop(current, None)
                self._process_or_wait(current, since, stop_at, due_only, ahead)
                with reading(self.engine) as conn:
                    children = store.children_of(conn, current)
                    origins = self._origins(conn, children)
                for c in children:
                    if c["root_id"] in origins:
                        specs[c["id"]] = (LocationSpec(c["type"], c["target"]), origins[c["root_id"]])
                queue.extend(c["id"] for c in children)
                # Only the next few: read-ahead results wait in memory until written, and a
                # single location is read quicker here than handed over.
                if len(queue) > 1:
                    for i in queue[:READ_AHEAD]:
                        if i in specs:
                            spec, origin = specs[i]
                            ahead.submit(i, spec, origin, self.policy, self._root_dir(origin),
                                         self.allowed_kinds)
        with transaction(self.engine) as conn:
            if abs(store.count_entities(conn) - count_before) > ANALYZE_AFTER:
                store.analyze(conn)

    @staticmethod
    def _origins(conn: Any, rows: list[dict[str, Any]]) -> dict[str, LocationSpec]:
        out = {}
        for root_id in {r["root_id"] for r in rows}:
            root = store.get_location(conn, root_id)
            if root is not None:
                out[root_id] = LocationSpec(root["type"], root["target"])
        return out

    def _process_or_wait(self, location_id: str, since: float, stop_at: float, due_only: bool,
                         ahead: catalog_engine.ReadAhead | None = None) -> None:
        while time.monotonic() < stop_at:
            if self.process(location_id, due_only=due_only, unread_since=None if due_only else since,
                            ahead=ahead):
                return
            time.sleep(0.05)
            with reading(self.engine) as conn:
                row = store.get_location(conn, location_id)
            if row is None or (row["last_read_at"] or 0) >= since:
                return  # gone, or another worker read it after we asked
            if row["lease_owner"] is None and (
                    (due_only and row["next_refresh_at"] > time.time()) or not due_only):
                return  # nobody holds it and it is fresh: someone did the work

    def process_due(self, limit: int = 50) -> int:
        """Process locations whose refresh is due. Returns how many were processed.

        Does nothing while a :meth:`process_tree` runs in this process: the children it finds
        are due at once, and the tree reads them next (on two cores, with read-ahead); picking
        them up here too would only make two threads of one process queue for the GIL and the
        write lock. Other replicas still share the work through leases."""
        if self._trees:
            return 0
        with reading(self.engine) as conn:
            ids = store.due_ids(conn, time.time(), limit)
        if not ids:
            return 0
        with self._busy():
            return sum(1 for i in ids if self.process(i, due_only=True))

    def process(self, location_id: str, *, due_only: bool = False, unread_since: float | None = None,
                ahead: catalog_engine.ReadAhead | None = None) -> bool:
        """Claim, read and write one location. False when it was not claimed: another worker
        holds it, or (with ``due_only``/``unread_since``) someone already did the work.
        ``ahead`` may hold this location already read (it is used only once claimed)."""
        lease = self.settings.catalog.processingLeaseSeconds
        with transaction(self.engine) as conn:
            if not store.claim(conn, location_id, self.worker_id, time.time(), lease,
                               due_only=due_only, unread_since=unread_since):
                if ahead is not None:
                    ahead.discard(location_id)
                return False
            row = store.get_location(conn, location_id)
            root = store.get_location(conn, row["root_id"]) if row else None
        if row is None or root is None:
            return True
        started = time.perf_counter()
        spec = LocationSpec(row["type"], row["target"])
        origin = LocationSpec(root["type"], root["target"])
        prepared = ahead.result(location_id, spec) if ahead is not None else None
        if prepared is None:
            try:
                result = self._read(spec, origin)
            except Exception as e:  # noqa: BLE001 - the engine promises data, but never lose a lease
                log.exception("catalog.read_crashed")
                result = ProcessingResult(unreadable=True, problems=[ProcessingProblem(
                    message=f"{spec.target}: could not be processed: {e}", file=spec.target)])
            prepared = catalog_engine.prepare(result, spec)
        if row["parent_id"] is None:
            gen = generated_location_entity(spec)
            prepared = prepared.with_first(ProcessedEntity(
                ref=f"location:default/{gen['metadata']['name']}", entity=gen, relations=[],
                location=spec, line=1))
        changed: list[str] = []
        for attempt in range(3):
            try:
                with transaction(self.engine) as conn:
                    changed = self._apply(conn, row, prepared, started)
                break
            except (IntegrityError, OperationalError):
                # Another location inserted one of these refs concurrently (PostgreSQL, read
                # committed), or a deadlock victim: apply again; the second pass sees the other
                # writer's rows (and records a conflict, or finds the location gone).
                if attempt == 2:
                    raise

        self._notify(changed, [])
        event(log, "catalog.location_processed", location=str(spec),
              entities=len(prepared.entities), changed=len(changed), problems=len(prepared.problems),
              ms=round((time.perf_counter() - started) * 1000, 1))
        return True

    def _apply(self, conn: Any, row: dict[str, Any], prepared: catalog_engine.PreparedResult,
               started: float) -> list[str]:
        now = time.time()
        loc_id = row["id"]
        if not store.lock_locations(conn, [loc_id]):
            return []  # unregistered while we were reading it: nothing to write
        problems = list(prepared.problems)
        here = store.refs_of_location(conn, [loc_id])
        if prepared.unreadable:
            self._finish(conn, row, problems, started, now, failed=True)
            return []
        where = prepared.location.target

        # One definition per ref within this location; the first wins.
        unique: dict[str, catalog_engine.PreparedEntity] = {}
        for pe in prepared.entities:
            if pe.ref in unique:
                problems.append(ProcessingProblem(
                    message=f"{where}:{pe.line}: {pe.ref}: defined twice in this "
                            f"location; remove one definition", file=where,
                    line=pe.line, entity_ref=pe.ref, name="ConflictError"))
                continue
            unique[pe.ref] = pe
        existing = store.existing_by_refs(conn, list(unique))
        other_locs = {ex.location_id for ex in existing.values()
                      if ex.location_id not in (None, loc_id) and not ex.orphan}
        targets = {i: store.get_location(conn, i) for i in other_locs}

        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        rel_rows: list[tuple[str, str, str, str]] = []
        search_rows: list[tuple[str, str, str | None, str | None]] = []
        changed_refs: list[str] = []
        splice = prepared.splicer()
        for ref, pe in unique.items():
            ex = existing.get(ref)
            if ex is not None and ex.location_id not in (None, loc_id) and not ex.orphan:
                other = targets.get(ex.location_id)
                problems.append(ProcessingProblem(
                    message=f"{where}:{pe.line}: {ref}: already defined by "
                            f"{other['type'] + ':' + other['target'] if other else 'another location'}"
                            f"; the first location keeps it. Remove one of the two definitions "
                            f"or unregister the other location",
                    file=where, line=pe.line, entity_ref=ref, name="ConflictError"))
                continue
            h = pe.hash
            if (ex is not None and ex.hash == h and not ex.orphan and ex.location_id == loc_id
                    and ex.errors == "[]"):
                continue
            uid = ex.uid if ex is not None else new_uid()
            generation = (ex.generation + 1) if ex is not None else 1
            etag = hashlib.sha1(f"{h}:{generation}".encode()).hexdigest()
            values = {"body": splice(pe.body, uid, etag), "hash": h, "etag": etag,
                      "generation": generation, "orphan": False, "errors": "[]",
                      "location_id": loc_id, "updated_at": now}
            if ex is None:
                inserts.append({"uid": uid, "ref": ref, "kind": pe.kind, "namespace": pe.namespace,
                                "name": pe.name, "created_at": now, **values})
            else:
                updates.append({"uid": uid, **values})
            changed_refs.append(ref)
            rel_rows.extend([(uid, s, t, g) for s, t, g in pe.relations])
            search_rows.extend([(uid, k, v, o) for k, v, o in pe.search])
            search_rows.append((uid, "metadata.uid", uid, uid))
            search_rows.append((uid, "metadata.etag", etag, etag))
        store.insert_entities(conn, inserts)
        store.update_entities(conn, updates)
        # Only updated entities can have rows to replace; new ones are inserted straight away.
        updated_uids = [u["uid"] for u in updates]
        store.replace_relations(conn, updated_uids, rel_rows)
        store.replace_search(conn, updated_uids, search_rows)

        # Entities this location no longer emits become orphans.
        gone = [r for ref, r in here.items() if ref not in unique and not r.orphan]
        store.set_orphan(conn, [r.uid for r in gone], True, now)
        changed_refs.extend(r.ref for r in gone)

        # Problems of an entity that is stored go to that entity; the rest to the location.
        stored = store.existing_by_refs(conn, [p.entity_ref for p in problems if p.entity_ref])
        by_entity: dict[str, list[dict[str, Any]]] = {}
        loc_problems = []
        for p in problems:
            ex = stored.get(p.entity_ref or "")
            if ex is not None and ex.location_id == loc_id and p.name != "ConflictError":
                by_entity.setdefault(ex.uid, []).append(p.as_status_item())
            else:
                loc_problems.append(p)
        for uid, items in by_entity.items():
            store.set_entity_errors(conn, uid, orjson.dumps(items).decode())
        changed_refs.extend(r for r, ex in stored.items() if ex.uid in by_entity)

        changed_refs.extend(self._sync_children(conn, row, unique, prepared.location, loc_problems, now))
        self._finish(conn, row, loc_problems, started, now, failed=False)
        return changed_refs

    def _sync_children(self, conn: Any, row: dict[str, Any], emitted: dict[str, catalog_engine.PreparedEntity],
                       where: LocationSpec, problems: list[ProcessingProblem], now: float) -> list[str]:
        """Make the child location rows match the Location entities just read."""
        wanted: dict[str, tuple[LocationSpec, str, catalog_engine.PreparedEntity]] = {}
        for ref, pe in emitted.items():
            if pe.entity is None or row["parent_id"] is None and ref.startswith(
                    "location:default/generated-"):
                continue
            for child in _targets_of(pe.entity, where):
                wanted.setdefault(location_key(child), (child, ref, pe))
        ancestors = set(store.ancestor_keys(conn, row["id"]))
        for key, (child, ref, pe) in wanted.items():
            if key in ancestors:
                problems.append(ProcessingProblem(
                    message=f"{where.target}:{pe.line}: {ref}: spec.target: location cycle: "
                            f"{child.target} is already an ancestor of this location; remove the target",
                    file=where.target, line=pe.line, field="spec.target", entity_ref=ref))
                continue
            if store.get_location_by_key(conn, key) is None:
                store.insert_location(conn, {
                    "id": str(uuid.uuid4()), "type": child.type, "target": child.target, "key": key,
                    "parent_id": row["id"], "root_id": row["root_id"], "origin": "child",
                    "entity_ref": ref, "position": row["position"], "created_at": now,
                    "next_refresh_at": now, "status": "pending", "errors": "[]",
                })
        orphaned: list[str] = []
        for child_row in store.children_of(conn, row["id"]):
            if child_row["key"] not in wanted:
                ids = store.subtree_ids(conn, child_row["id"])
                owned = store.refs_of_location(conn, ids)
                store.set_orphan(conn, [r.uid for r in owned.values()], True, now, detach=True)
                store.delete_locations(conn, ids)
                orphaned.extend(owned)
        return orphaned

    def _finish(self, conn: Any, row: dict[str, Any], problems: list[ProcessingProblem],
                started: float, now: float, failed: bool) -> None:
        store.finish(conn, row["id"], self.worker_id, {
            "status": "failed" if failed else "ok",
            "errors": orjson.dumps([p.as_status_item() for p in problems]).decode(),
            "last_read_at": now,
            "last_duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "next_refresh_at": now + self.settings.catalog.refreshIntervalSeconds,
        })
        store.bump_version(conn)  # last: entities, relations and errors may all have changed

    def refresh(self, entity_ref: str | None = None) -> None:
        """Read again at once: the location of ``entity_ref``, or every location."""
        with transaction(self.engine) as conn:
            if entity_ref is None:
                store.mark_due(conn, None, time.time())
                ids = [r["id"] for r in store.list_locations(conn, roots_only=True)]
            else:
                row = store.entity_by_ref(conn, self.parse_ref(entity_ref))
                if row is None:
                    raise NotFoundError(f"No entity named '{entity_ref}' found")
                ids = [row.location_id] if row.location_id else []
        for i in ids:
            self.process_tree(i)

    def refresh_targets(self, prefix: str) -> int:
        """Re-read, now, every location whose target starts with ``prefix`` (a pushed repo)."""
        with reading(self.engine) as conn:
            ids = store.locations_for_targets(conn, prefix)
        for i in ids:
            self.process_tree(i)
        return len(ids)

    def recent(self, limit: int = 10) -> list[dict[str, Any]]:
        """The most recently changed entities, newest first."""
        with reading(self.engine) as conn:
            rows = store.entity_rows(conn, True, order=[store.entities.c.updated_at.desc()], limit=limit)
            return self._stitch(conn, rows)

    def entities_under(self, url_prefix: str) -> list[dict[str, Any]]:
        """Entities read from a URL starting with ``url_prefix`` (e.g. one repository)."""
        with reading(self.engine) as conn:
            rows = store.entity_rows(conn, store.managed_by_prefix(f"url:{url_prefix}"))
            return self._stitch(conn, rows)

    def pending(self) -> int:
        with reading(self.engine) as conn:
            return store.pending_count(conn, time.time())

    # --- reading entities --------------------------------------------------------------------

    @staticmethod
    def parse_ref(ref: str, default_kind: str | None = None) -> str:
        return catalog_engine.parse_entity_ref(ref, default_kind=default_kind).ref

    def _stitch(self, conn: Any, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """Stored rows → full entities with relations, status and the orphan annotation."""
        refs = [r.ref for r in rows]
        rels = store.relations_of(conn, refs)
        loc_refs = [r.ref for r in rows if r.kind == "location"]
        loc_errors = store.location_errors_for(conn, loc_refs) if loc_refs else {}
        out = []
        for r in rows:
            entity = orjson.loads(r.body)
            entity["relations"] = [{"type": t, "targetRef": target} for t, target in rels.get(r.ref, ())]
            items = orjson.loads(r.errors) if r.errors != "[]" else []
            for errs in loc_errors.get(r.ref, ()):
                items.extend(orjson.loads(errs))
            if items:
                entity["status"] = {"items": items}
            if r.orphan:
                entity["metadata"].setdefault("annotations", {})[ANNOTATION_ORPHAN] = "true"
            out.append(entity)
        return out

    def _stitch_raw(self, conn: Any, rows: Sequence[Any]) -> list[Any]:
        """:meth:`_stitch` for answers that are only serialized: the stored JSON with the
        relations (and status) appended as text, instead of parsing and dumping every body.
        Same bytes as dumping the stitched dict: ``relations`` and ``status`` are added last
        there too. Bodies that are orphans or mention ``relations``/``status`` take the slow path."""
        refs = [r.ref for r in rows]
        rels = store.relations_of(conn, refs)
        loc_refs = [r.ref for r in rows if r.kind == "location"]
        loc_errors = store.location_errors_for(conn, loc_refs) if loc_refs else {}
        out: list[Any] = []
        for r in rows:
            body: str = r.body
            if r.orphan or '"relations":' in body or '"status":' in body:
                out.append(self._stitch(conn, [r])[0])
                continue
            tail = b',"relations":' + orjson.dumps([{"type": t, "targetRef": g} for t, g in rels.get(r.ref, ())])
            items = orjson.loads(r.errors) if r.errors != "[]" else []
            for errs in loc_errors.get(r.ref, ()):
                items.extend(orjson.loads(errs))
            if items:
                tail += b',"status":' + orjson.dumps({"items": items})
            out.append(orjson.Fragment(body[:-1].encode() + tail + b"}"))
        return out

    def get_by_ref(self, ref: str) -> dict[str, Any] | None:
        with reading(self.engine) as conn:
            row = store.entity_by_ref(conn, ref.lower())
            return self._stitch(conn, [row])[0] if row else None

    def get_entity(self, ref: str) -> dict[str, Any] | None:
        """Any ref form Backstage accepts (``component:foo``, ``Component:default/foo``)."""
        try:
            return self.get_by_ref(self.parse_ref(ref))
        except InputError:
            return None

    def get_by_name(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        entity = self.get_by_ref(f"{kind}:{namespace}/{name}")
        if entity is None:
            raise NotFoundError(f"No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'")
        return entity

    def get_by_uid(self, uid: str) -> dict[str, Any]:
        with reading(self.engine) as conn:
            row = store.entity_by_uid(conn, uid)
            if row is None:
                raise NotFoundError(f"No entity with uid {uid}")
            return self._stitch(conn, [row])[0]

    def delete_by_uid(self, uid: str) -> None:
        with transaction(self.engine) as conn:
            row = store.entity_by_uid(conn, uid)
            if row is None:
                raise NotFoundError(f"No entity with uid {uid}")
            store.delete_entities(conn, [uid])
            store.bump_version(conn)
        self._notify([], [row.ref])

    def by_refs(self, refs: Sequence[str], fields: list[str] | None = None, *,
                raw: bool = False) -> list[Any]:
        """Entities (or None) in the order of ``refs``. ``raw``: see :meth:`query`."""
        keys: list[str | None] = []
        for ref in refs:
            try:
                keys.append(self.parse_ref(ref))
            except InputError:
                keys.append(None)
        with reading(self.engine) as conn:
            rows = store.entities_by_refs(conn, [k for k in keys if k])
            if raw and not fields:
                return self._by_keys(keys, rows, self._stitch_raw(conn, list(rows.values())))
            stitched = dict(zip(rows, self._stitch(conn, list(rows.values())), strict=True))
        return [project(stitched[k], fields) if k in stitched else None for k in keys]

    @staticmethod
    def _by_keys(keys: Sequence[str | None], rows: dict[str, Any], items: list[Any]) -> list[Any]:
        found = dict(zip(rows, items, strict=True))
        return [found.get(k) if k else None for k in keys]

    def get_by_name_raw(self, kind: str, namespace: str, name: str) -> Any:
        """:meth:`get_by_name` for the API: see ``raw`` in :meth:`query`."""
        ref = f"{kind}:{namespace}/{name}".lower()
        with reading(self.engine) as conn:
            row = store.entity_by_ref(conn, ref)
            if row is not None:
                return self._stitch_raw(conn, [row])[0]
        raise NotFoundError(f"No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'")

    def query(self, q: EntityQuery, *, raw: bool = False) -> QueryPage:
        """One page of entities. ``raw``: items the API serializes as they are (pre-serialized
        JSON fragments when no ``fields`` are asked for); not for code that reads them."""
        where: Any = store.filter_clause(q.filters) if q.filters else True
        with reading(self.engine) as conn:
            key = ("query", q.filters, q.order, q.full_text_term, q.full_text_fields, q.limit, q.offset)
            version = store.read_version(conn) if raw and not q.fields else None
            cached = self._cache.get(key, version)
            if cached is not None:
                return cached  # type: ignore[no-any-return]
            if q.full_text_term:
                from sqlalchemy import and_

                where = and_(where, store.full_text_clause_for(conn, q.full_text_term, q.full_text_fields))
            total = store.count_entities(conn, where if where is not True else None)
            limit = q.limit if q.limit is not None else max(total, 1)
            rows = store.query_page(conn, where, q.order, limit, q.offset)
            if raw and not q.fields:
                items: list[Any] = self._stitch_raw(conn, rows)
            else:
                items = [project(e, q.fields) for e in self._stitch(conn, rows)]
        nxt = q.offset + limit if q.offset + limit < total else None
        prev = max(q.offset - limit, 0) if q.offset > 0 else None
        page = QueryPage(items=items, total=total, next_offset=nxt, prev_offset=prev)
        if len(items) <= _AnswerCache.MAX_ITEMS:
            self._cache.put(key, version, page)
        return page

    def iter_entities(self, batch: int = 1000) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.query(EntityQuery(limit=batch, offset=offset))
            yield from page.items
            if page.next_offset is None:
                return
            offset = page.next_offset

    def facets(self, facets: Sequence[str], filters: list[dict[str, list[str] | None]]) -> dict[str, Any]:
        where = store.filter_clause(filters) if filters else True
        out: dict[str, Any] = {}
        with reading(self.engine) as conn:
            key = ("facets", list(facets), filters)
            version = store.read_version(conn)
            cached = self._cache.get(key, version)
            if cached is not None:  # copied: callers may change what they get
                return {"facets": {f: [dict(x) for x in v] for f, v in cached.items()}}
            for f in facets:
                counts = store.facet_original_counts(conn, f, where)
                out[f] = [{"value": v, "count": c} for v, c in sorted(counts, key=lambda x: (-x[1], x[0]))]
        self._cache.put(key, version, {f: [dict(x) for x in v] for f, v in out.items()})
        return {"facets": out}

    def ancestry(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        root_ref = f"{kind}:{namespace}/{name}".lower()
        items: list[dict[str, Any]] = []
        with reading(self.engine) as conn:
            current: str | None = root_ref
            seen: set[str] = set()
            while current and current not in seen:
                seen.add(current)
                row = store.entity_by_ref(conn, current)
                if row is None:
                    if current == root_ref:
                        raise NotFoundError(f"No entity named '{name}' found, with kind '{kind}' "
                                            f"in namespace '{namespace}'")
                    break
                loc = store.get_location(conn, row.location_id) if row.location_id else None
                parent = loc["entity_ref"] if loc and loc["entity_ref"] != current else None
                items.append({"entity": self._stitch(conn, [row])[0],
                              "parentEntityRefs": [parent] if parent else []})
                current = parent
        return {"rootEntityRef": root_ref, "items": items}

    def validate_entity(self, entity: Any, location: str | None) -> list[ProcessingProblem]:
        spec = None
        if location:
            type_, _, target = location.partition(":")
            if type_ in ("file", "url") and target:
                spec = LocationSpec(type_, target)  # type: ignore[arg-type]
        return catalog_engine.validate_entity(entity, spec)

    def stats(self) -> dict[str, int]:
        with reading(self.engine) as conn:
            e = store.entities.c
            return {
                "entities": store.count_entities(conn),
                "orphans": store.count_entities(conn, e.orphan.is_(True)),
                "errors": store.count_entities(conn, e.errors != "[]"),
                "location_errors": sum(1 for r in store.list_locations(conn) if r["errors"] != "[]"),
            }


class _AnswerCache:
    """Answers of repeated queries and facets, valid while ``catalog_state.version`` (read in
    the same transaction as the answer would be) is unchanged. Every catalog write bumps that
    version, in every replica's database, so a hit is exactly what the query would answer.
    Cached values are shared: only answers that are serialized as they are (``raw``) go in."""

    SIZE = 256
    MAX_ITEMS = 500

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, Any]] = {}

    def get(self, key: Any, version: int | None) -> Any:
        if version is None:
            return None
        k = repr(key)
        with self._lock:
            hit = self._entries.get(k)
            if hit is None or hit[0] != version:
                return None
            self._entries[k] = self._entries.pop(k)  # most recently used last
            return hit[1]

    def put(self, key: Any, version: int | None, value: Any) -> None:
        if version is None:
            return
        with self._lock:
            self._entries[repr(key)] = (version, value)
            while len(self._entries) > self.SIZE:
                del self._entries[next(iter(self._entries))]


def project(entity: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Keep only the dotted ``fields`` of an entity (Backstage's ``fields`` parameter)."""
    if not fields:
        return entity
    out: dict[str, Any] = {}
    for f in fields:
        parts = f.split(".")
        src: Any = entity
        for p in parts:
            if not isinstance(src, dict) or p not in src:
                src = None
                break
            src = src[p]
        if src is None:
            continue
        dst = out
        for p in parts[:-1]:
            dst = dst.setdefault(p, {})
        dst[parts[-1]] = src
    return out


def validate_file(path: str, root: str | None = None) -> list[ProcessingProblem]:
    """Problems in one entity file, as ``FILE:LINE: ref: field: message`` (``greenroom catalog
    validate``). Child Location targets are checked to exist but not followed; no database."""
    spec = LocationSpec("file", os.path.abspath(path))
    if root is None:
        cwd = os.getcwd()
        root = cwd if spec.target.startswith(cwd + os.sep) else os.path.dirname(spec.target)
    policy = catalog_engine.DefaultReadPolicy([], "http://127.0.0.1:7007")
    return catalog_engine.process_location(spec, origin=spec, policy=policy, root=root,
                                           allowed_kinds=None).problems

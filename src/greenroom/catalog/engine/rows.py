"""Entities turned into rows ready to write, so that the writing thread only writes.

Model: :func:`prepare` takes the :class:`ProcessingResult` of one location and returns a
:class:`PreparedResult` whose entities carry what storage needs and nothing it does not: the
canonical ref, lower-cased kind/namespace/name, the content hash, the stored body as JSON
bytes, the relations as ``(source, type, target)`` tuples and the flattened search rows as
``(key, value, original)`` tuples. Everything here is plain data (tuples, strings, bytes), so a
result pickles quickly when it is computed in a helper process (:mod:`.parallel`).

The body and the search rows are computed before the entity has a ``metadata.uid`` and
``metadata.etag`` (those come from the database). ``metadata.uid``/``metadata.etag`` are set to
two marks made of a random token instead; :meth:`PreparedResult.splicer` swaps the marks for
the real values in the JSON bytes, and the writer adds the two search rows itself. With a fresh
random token per call, no value an author writes can equal a mark.

Invariants: the stored body and search rows are exactly those the entity with its real uid and
etag would give (same keys, same key order); ``hash`` is taken before uid/etag are set, so an
unchanged file gives an unchanged hash. Never raises for bad input (the entities were validated).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from greenroom.catalog.model import (
    DEFAULT_NAMESPACE,
    LocationSpec,
    ProcessedEntity,
    ProcessingProblem,
    ProcessingResult,
)

MAX_VALUE_LENGTH = 200

SearchRow = tuple[str, "str | None", "str | None"]


class PreparedEntity(NamedTuple):
    ref: str
    kind: str  # lower-cased
    namespace: str  # lower-cased
    name: str  # lower-cased
    hash: str
    body: bytes  # JSON with the uid and etag marks
    relations: list[tuple[str, str, str]]
    search: list[SearchRow]  # without metadata.uid / metadata.etag
    line: int
    entity: dict[str, Any] | None  # only for Location entities (their targets become locations)


class PreparedResult(NamedTuple):
    location: LocationSpec
    entities: list[PreparedEntity]
    locations: list[LocationSpec]
    problems: list[ProcessingProblem]
    unreadable: bool
    token: str  # makes the uid and etag marks of this result

    def marks(self) -> tuple[str, str]:
        return f"\x00uid-{self.token}", f"\x00etag-{self.token}"

    def splicer(self) -> Callable[[bytes, str, str], str]:
        """``splice(body, uid, etag)``: the stored JSON of an entity, marks replaced."""
        uid_mark, etag_mark = (orjson.dumps(m) for m in self.marks())

        def splice(body: bytes, uid: str, etag: str) -> str:
            return (body.replace(uid_mark, b'"' + uid.encode() + b'"', 1)
                    .replace(etag_mark, b'"' + etag.encode() + b'"', 1).decode())

        return splice

    def with_first(self, pe: ProcessedEntity) -> PreparedResult:
        """This result with one more entity in front (the generated Location of a root)."""
        return self._replace(entities=[_prepare_one(pe, self.marks()), *self.entities])


def content_hash(entity: dict[str, Any]) -> str:
    return hashlib.sha1(orjson.dumps(entity, option=orjson.OPT_SORT_KEYS)).hexdigest()


def prepare(result: ProcessingResult, location: LocationSpec) -> PreparedResult:
    """Prepare every entity of ``result`` (read from ``location``) for writing. Mutates the
    entity dicts (their metadata gets the marks), which the caller no longer needs."""
    prepared = PreparedResult(location, [], result.locations, result.problems, result.unreadable,
                              os.urandom(12).hex())
    marks = prepared.marks()
    prepared.entities.extend(_prepare_one(pe, marks) for pe in result.entities)
    return prepared


def _prepare_one(pe: ProcessedEntity, marks: tuple[str, str]) -> PreparedEntity:
    entity = pe.entity
    h = content_hash(entity)
    meta = entity.setdefault("metadata", {})
    meta["uid"], meta["etag"] = marks
    kind = entity["kind"].lower()
    return PreparedEntity(
        ref=pe.ref, kind=kind, namespace=(meta.get("namespace") or DEFAULT_NAMESPACE).lower(),
        name=meta["name"].lower(), hash=h, body=orjson.dumps(entity),
        relations=[(r.source, r.type, r.target) for r in pe.relations],
        search=[r for r in flatten(entity) if r[2] not in marks],
        line=pe.line, entity=entity if kind == "location" else None,
    )


def flatten(entity: dict[str, Any]) -> list[SearchRow]:
    """Flatten an entity into ``(key, value, original)`` rows as Backstage's search table
    does: dotted, lower-cased keys; one row per array element; objects inside arrays continue the
    key; values over 200 characters are stored as null (they still answer "exists")."""
    rows: list[SearchRow] = []
    append = rows.append
    stack: list[tuple[str, Any]] = [(k, v) for k, v in entity.items() if k not in ("relations", "status")]
    pop, push = stack.pop, stack.append
    while stack:
        key, value = pop()
        t = type(value)
        if t is str:
            pass
        elif t is dict:
            for k, v in value.items():
                push((f"{key}.{k}", v))
            continue
        elif t is list:
            for v in value:
                push((key, v))
            continue
        elif value is None:
            continue
        elif t is bool:
            value = "true" if value else "false"
        else:
            value = str(value)
        if len(key) > 255:
            continue
        if len(value) > MAX_VALUE_LENGTH:
            append((key.lower(), None, None))
        else:
            append((key.lower(), value.lower(), value))
    return rows

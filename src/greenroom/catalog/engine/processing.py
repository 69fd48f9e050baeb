"""Processing one catalog location: read, parse, resolve placeholders, validate, annotate, relate.

Model: :func:`process_location` turns a :class:`LocationSpec` into a :class:`ProcessingResult`
of entities (with their relations, both directions), child locations (from ``Location``
entities) and problems. It does I/O on files/URLs through :mod:`.reader` but never touches a
database; the caller stores the result.

Invariants:
- each YAML document is handled on its own: one bad entity never blocks its siblings;
- placeholders are substituted *before* schema validation (Backstage's order);
- ``metadata.namespace`` defaults to ``default``; ``backstage.io/managed-by-location`` and
  ``managed-by-origin-location`` (and ``view-url``/``edit-url``/``source-location`` for GitHub
  and GitLab URLs) are added unless the entity sets them itself (lodash ``merge`` semantics);
- child targets are resolved against the file/URL they were written in; a target equal to the
  current location, outside the root tree or on a host that is not allowed becomes a problem
  (the walk can therefore neither loop on itself nor escape);
- the result is deterministic: same input, same entities, relations and problems, same order.

Failure behaviour: never raises for bad input. A target that cannot be read or parsed gives a
problem with ``entity_ref=None`` and ``unreadable=True`` (previously read entities must be kept).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from greenroom.catalog.model import (
    ANNOTATION_EDIT_URL,
    ANNOTATION_LOCATION,
    ANNOTATION_ORIGIN_LOCATION,
    ANNOTATION_SOURCE_LOCATION,
    ANNOTATION_VIEW_URL,
    DEFAULT_NAMESPACE,
    LocationSpec,
    ProcessedEntity,
    ProcessingProblem,
    ProcessingResult,
    ReadPolicy,
)
from greenroom.core.errors import GreenroomError, InputError

from .check import check_entity, format_issue
from .placeholders import RESOLVERS, resolve_placeholders
from .reader import read_text, resolve_target
from .relations import RelationError, relations_of
from .validation import Issue
from .yamlsafe import locate_line, parse_yaml_documents

_COMMIT_RE = re.compile(r"\b[0-9a-f]{40,}\b")


def default_root(location: LocationSpec, origin: LocationSpec) -> str | None:
    """The tree file targets must stay in when none is given: the origin file's directory."""
    if origin.type == "file":
        return os.path.dirname(origin.target)
    if location.type == "file":
        return os.path.dirname(location.target)
    return None


def scm_annotations(location: LocationSpec) -> dict[str, str]:
    """view-url / edit-url / source-location for URL locations, like AnnotateLocationEntityProcessor."""
    if location.type != "url":
        return {}
    url = location.target
    out = {ANNOTATION_VIEW_URL: url}
    m = re.match(r"^(https?://github\.com/[^/]+/[^/]+)/(?:blob|tree|edit|raw)/(.+)$", url)
    g = re.match(r"^(https?://[^/]*gitlab[^/]*/.+?)/-/(?:blob|tree|edit|raw)/(.+)$", url)
    if m:
        if not _COMMIT_RE.search(url):
            out[ANNOTATION_EDIT_URL] = f"{m.group(1)}/edit/{m.group(2)}"
        directory = m.group(2).rsplit("/", 1)[0] + "/" if "/" in m.group(2) else m.group(2) + "/"
        out[ANNOTATION_SOURCE_LOCATION] = f"url:{m.group(1)}/tree/{directory}"
    elif g:
        if not _COMMIT_RE.search(url):
            out[ANNOTATION_EDIT_URL] = f"{g.group(1)}/-/edit/{g.group(2)}"
        directory = g.group(2).rsplit("/", 1)[0] + "/" if "/" in g.group(2) else g.group(2) + "/"
        out[ANNOTATION_SOURCE_LOCATION] = f"url:{g.group(1)}/-/tree/{directory}"
    return out


class _Doc:
    """Context for reporting problems of one document, with lazily located lines."""

    def __init__(self, text: str | None, index: int, line: int | None, file: str | None, display: str | None) -> None:
        self.text, self.index, self.line, self.file, self.display = text, index, line, file, display

    def problem(self, issue: Issue, ref: str | None) -> ProcessingProblem:
        line = self.line
        if self.text is not None and issue.path:
            line = locate_line(self.text, self.index, list(issue.path)) or line
        return ProcessingProblem(
            message=format_issue(issue, file=self.display, line=line, ref=ref),
            file=self.file, line=line, field=issue.field or None, entity_ref=ref,
        )


def _ref_of(entity: Any) -> str | None:
    if not isinstance(entity, dict):
        return None
    meta = entity.get("metadata")
    kind = entity.get("kind")
    if not isinstance(meta, dict) or not isinstance(kind, str) or not isinstance(meta.get("name"), str) or not kind:
        return None
    ns = meta.get("namespace")
    ns = ns if isinstance(ns, str) and ns else DEFAULT_NAMESPACE
    return f"{kind.lower()}:{ns.lower()}/{meta['name'].lower()}"


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building one file's (acyclic) entity trees.

    Parsing allocates hundreds of thousands of small containers; generation-2 collections in the
    middle of that cost ~10 % of ingestion time and find nothing (YAML data has no cycles; a
    recursive alias is refused and collected once GC resumes).
    """
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def process_location(
    location: LocationSpec,
    *,
    origin: LocationSpec,
    policy: ReadPolicy,
    root: str | None = None,
    allowed_kinds: set[str] | None = None,
    http: httpx.Client | None = None,
) -> ProcessingResult:
    """Read and process every entity at ``location`` (see the module docstring).

    ``origin`` is the registered location this one was reached from (itself for a root);
    ``root`` the directory file targets must stay in (default: the origin file's directory);
    ``allowed_kinds`` restricts kinds (case-insensitive); ``http`` is an optional httpx client.
    """
    with _gc_paused():
        return _process(location, origin, policy, root, allowed_kinds, http)


def _process(location: LocationSpec, origin: LocationSpec, policy: ReadPolicy, root: str | None,
             allowed_kinds: set[str] | None, http: httpx.Client | None) -> ProcessingResult:
    result = ProcessingResult()
    root = root if root is not None else default_root(location, origin)
    display = _display(location, root)
    try:
        text = read_text(location, policy, root=root, http=http)
        documents = parse_yaml_documents(text, display)
    except GreenroomError as e:
        result.problems.append(ProcessingProblem(message=e.message, file=location.target, name=e.name))
        result.unreadable = True
        return result

    annotations = {ANNOTATION_LOCATION: str(location), ANNOTATION_ORIGIN_LOCATION: str(origin)}
    annotations.update(scm_annotations(location))
    may_have_placeholders = "$" in text
    seen: dict[str, int] = {}
    for index, (data, line) in enumerate(documents):
        doc = _Doc(text, index, line, location.target, display)
        ref = _ref_of(data)
        if may_have_placeholders and isinstance(data, dict):
            data, issues = resolve_placeholders(data, location, policy=policy, root=root, http=http)
            if issues:
                result.problems.extend(doc.problem(i, ref) for i in issues)
                continue
        issues = check_entity(data, allowed_kinds)
        if issues:
            result.problems.extend(doc.problem(i, ref) for i in issues)
            continue
        assert ref is not None
        try:
            relations = relations_of(data)
        except RelationError as e:
            path = tuple(int(p) if p.isdigit() else p for p in e.field.split("."))
            result.problems.append(doc.problem(Issue(path, e.message, "give a full ref like kind:namespace/name"), ref))
            continue
        if ref in seen:
            result.problems.append(doc.problem(
                Issue(("metadata", "name"), f"the same entity is already defined at line {seen[ref]} of this file",
                      "rename one of them or remove the duplicate"), ref))
            continue
        seen[ref] = line
        meta = data["metadata"]
        if not meta.get("namespace"):
            meta["namespace"] = DEFAULT_NAMESPACE
        existing = meta.get("annotations")
        meta["annotations"] = {**annotations, **existing} if existing else dict(annotations)
        if data["kind"] == "Location":
            _child_locations(data, location, policy, root, doc, ref, result)
        result.entities.append(ProcessedEntity(ref=ref, entity=data, relations=relations, location=location, line=line))
    return result


def _display(location: LocationSpec, root: str | None) -> str:
    if location.type == "file" and root:
        rel = os.path.relpath(location.target, root)
        if not rel.startswith(".."):
            return rel
    return location.target


def _child_locations(entity: dict[str, Any], location: LocationSpec, policy: ReadPolicy, root: str | None,
                     doc: _Doc, ref: str, result: ProcessingResult) -> None:
    """Backstage's LocationEntityProcessor: ``target`` and ``targets``, type inherited unless given."""
    spec = entity.get("spec") or {}
    child_type = spec.get("type") or location.type
    targets: list[tuple[tuple[str | int, ...], str]] = []
    if spec.get("target"):
        targets.append((("spec", "target"), spec["target"]))
    for i, t in enumerate(spec.get("targets") or []):
        targets.append((("spec", "targets", i), t))
    for path, raw in targets:
        try:
            child = _child(child_type, raw, location, policy, root)
        except GreenroomError as e:
            result.problems.append(doc.problem(Issue(path, e.message.rstrip("."), _child_fix(e)), ref))
            continue
        if child not in result.locations:
            result.locations.append(child)


def _child_fix(e: GreenroomError) -> str:
    if e.name == "NotAllowedError":
        return "keep targets inside the catalog's tree and on allowed hosts"
    return "fix the target"


def _child(child_type: str, raw: str, location: LocationSpec, policy: ReadPolicy, root: str | None) -> LocationSpec:
    if child_type not in ("file", "url"):
        raise InputError(f"location type {child_type!r} is not supported; use file or url")
    if child_type == "file" and raw.endswith(("/", os.sep)):
        raise InputError(f"file target {raw} ends with a path separator; point it at a YAML file")
    if child_type == "file" and location.type == "url" and not raw.startswith(("http://", "https://")):
        raise InputError(f"target {raw} is a file, but this Location was read from a URL; use a url target")
    if child_type == "file":
        if raw.startswith(("http://", "https://")):
            raise InputError(f"target {raw} is a URL but the location type is file; set type: url")
        # Relative to the file it is written in (Backstage needs a leading '.'; any relative path works here).
        child = LocationSpec("file", os.path.normpath(os.path.join(os.path.dirname(location.target), raw)))
    else:
        child = resolve_target(location, raw)
        if child.type != "url":
            raise InputError(f"target {raw} must be an absolute http(s) URL for type url")
    if child == location:
        raise InputError(f"target {raw} refers to this same file")
    if child.type == "file":
        if root is not None:
            policy.check_file(child.target, root)
    else:
        policy.check_url(child.target)
    return child


def validate_entity(
    entity: Any,
    location: LocationSpec | None = None,
    *,
    policy: ReadPolicy | None = None,
    allowed_kinds: Iterable[str] | None = None,
    http: httpx.Client | None = None,
) -> list[ProcessingProblem]:
    """Problems of one entity (empty: valid), for ``POST /validate-entity`` and the CLI.

    With a ``policy`` and ``location``, placeholders are resolved as in ingestion; without,
    each placeholder stands for a non-empty string so only the rest of the entity is judged.
    """
    ref = _ref_of(entity)
    doc = _Doc(None, 0, None, location.target if location else None, location.target if location else None)
    if isinstance(entity, dict):
        if policy is not None and location is not None:
            entity, issues = resolve_placeholders(entity, location, policy=policy, http=http)
            if issues:
                return [doc.problem(i, ref) for i in issues]
        else:
            entity = _stub_placeholders(entity)
    issues = check_entity(entity, allowed_kinds)
    if issues:
        return [doc.problem(i, ref) for i in issues]
    try:
        relations_of(entity)
    except RelationError as e:
        path = tuple(int(p) if p.isdigit() else p for p in e.field.split("."))
        return [doc.problem(Issue(path, e.message, "give a full ref like kind:namespace/name"), ref)]
    return []


MAX_ENTITY_DEPTH = 64  # as the YAML reader's bound: no real entity is deeper


def _stub_placeholders(data: Any, depth: int = 0) -> Any:
    if depth > MAX_ENTITY_DEPTH:
        raise InputError(f"entity is nested more than {MAX_ENTITY_DEPTH} levels deep; flatten it")
    if isinstance(data, list):
        return [_stub_placeholders(x, depth + 1) for x in data]
    if not isinstance(data, dict):
        return data
    if len(data) == 1:
        ((k, v),) = data.items()
        if isinstance(k, str) and k[:1] == "$" and k[1:] in RESOLVERS and isinstance(v, str):
            return f"<{k} {v}>"
    return {k: _stub_placeholders(v, depth + 1) for k, v in data.items()}

"""``$text``/``$json``/``$yaml``/``$openapi``/``$asyncapi`` placeholders, like Backstage's PlaceholderProcessor.

Model: anywhere in an entity, an object with exactly one key, that key one of the resolvers
above and its value a string, is replaced by content read from that string, a path or URL relative
to the file or URL the entity came from. Objects with several keys, unknown ``$keys`` (JSON
schema's ``$ref``) or non-string values are left alone, as Backstage does.

Invariants: every read goes through :mod:`.reader` and its policy, so a placeholder in a file can
reach only files inside the location's tree or allowed hosts, and one in a URL only allowed hosts.
``$openapi``/``$asyncapi`` inline external ``$ref``s (relative files or URLs, each read under the
same rules, cycles left as ``$ref``) and produce the bundled document as YAML text.

Failure behaviour: :func:`resolve_placeholders` never raises for bad input; it returns the issues
(field path, problem, fix) and the caller rejects the entity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import httpx
import yaml

from greenroom.catalog.model import LocationSpec, ReadPolicy
from greenroom.core.errors import GreenroomError

from .reader import join_url, read_text
from .validation import Issue
from .yamlsafe import parse_yaml_documents

MAX_BUNDLE_READS = 100
RESOLVERS = ("text", "json", "yaml", "openapi", "asyncapi")


def relative_location(base: LocationSpec, value: str) -> LocationSpec:
    """Where a placeholder or ``$ref`` value points, relative to ``base``."""
    if value.startswith(("http://", "https://")):
        return LocationSpec("url", value)
    if base.type == "file":
        return LocationSpec("file", os.path.normpath(os.path.join(os.path.dirname(base.target), value)))
    return LocationSpec("url", join_url(base.target, value))


class _Context:
    def __init__(self, location: LocationSpec, policy: ReadPolicy, root: str | None,
                 http: httpx.Client | None) -> None:
        self.location, self.policy, self.root, self.http = location, policy, root, http
        self.issues: list[Issue] = []
        self.reads: dict[LocationSpec, str] = {}

    def read(self, target: LocationSpec) -> str:
        if target not in self.reads:
            if len(self.reads) >= MAX_BUNDLE_READS:
                raise _Fail(f"more than {MAX_BUNDLE_READS} files referenced", "reduce the number of $refs")
            self.reads[target] = read_text(target, self.policy, root=self.root, http=self.http)
        return self.reads[target]


class _Fail(Exception):
    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def resolve_placeholders(
    entity: dict[str, Any],
    location: LocationSpec,
    *,
    policy: ReadPolicy,
    root: str | None = None,
    http: httpx.Client | None = None,
) -> tuple[dict[str, Any], list[Issue]]:
    """Return ``entity`` with its placeholders substituted (a copy where changed) and the issues."""
    ctx = _Context(location, policy, root, http)
    result = _walk(entity, (), ctx)
    return result, ctx.issues


def _walk(data: Any, path: tuple[str | int, ...], ctx: _Context) -> Any:
    if isinstance(data, list):
        items = [_walk(item, (*path, i), ctx) for i, item in enumerate(data)]
        return data if all(a is b for a, b in zip(items, data)) else items
    if not isinstance(data, dict):
        return data
    if len(data) == 1:
        ((key, value),) = data.items()
        if isinstance(key, str) and key.startswith("$") and key[1:] in RESOLVERS and isinstance(value, str):
            try:
                return _resolve(key[1:], value, ctx)
            except _Fail as f:
                ctx.issues.append(Issue(path, f.problem, f.fix))
                return data
    changed = False
    out: dict[Any, Any] = {}
    for k, v in data.items():
        nv = _walk(v, (*path, k), ctx)
        changed = changed or nv is not v
        out[k] = nv
    return out if changed else data


def _resolve(kind: str, value: str, ctx: _Context) -> Any:
    target = relative_location(ctx.location, value)
    try:
        content = ctx.read(target)
    except GreenroomError as e:
        raise _Fail(f"Placeholder ${kind} could not read location {value}, {e.message}",
                    "point it at a readable file inside the location's tree or an allowed URL") from None
    if kind == "text":
        return content
    if kind == "json":
        try:
            return json.loads(content)
        except ValueError as e:
            raise _Fail(f"Placeholder $json failed to parse JSON data at {value}, {e}", "fix the JSON") from None
    try:
        documents = _parse(content, target.target)
    except GreenroomError as e:
        raise _Fail(f"Placeholder ${kind} failed to parse YAML data at {value}, {e.message}", "fix the YAML") from None
    if len(documents) != 1:
        raise _Fail(f"Placeholder ${kind} expected to find exactly one document of data at {value}, "
                    f"found {len(documents)}", "keep exactly one YAML document in that file")
    if kind == "yaml":
        return documents[0]
    bundled = _bundle(documents[0], target, documents[0], ctx, set())
    return yaml.safe_dump(bundled, sort_keys=False, allow_unicode=True, width=1_000_000)


def _parse(content: str, name: str) -> list[Any]:
    if content.lstrip().startswith(("{", "[")):
        try:
            return [json.loads(content)]
        except ValueError:
            pass  # JSON-looking YAML: fall through
    return [data for data, _line in parse_yaml_documents(content, name)]


def _pointer(document: Any, fragment: str, where: str) -> Any:
    node = document
    for raw in [p for p in fragment.split("/") if p != ""]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _Fail(f"$ref {where}#{fragment} points at nothing", "fix the JSON pointer after #")
    return node


def _bundle(node: Any, base: LocationSpec, document: Any, ctx: _Context,
            active: set[tuple[LocationSpec, str]], is_main: bool = True) -> Any:
    """Inline external ``$ref``s of ``node`` (which lives in ``document`` at ``base``)."""
    recurse: Callable[[Any], Any] = lambda n: _bundle(n, base, document, ctx, active, is_main)
    if isinstance(node, list):
        return [recurse(item) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and not (is_main and ref.startswith("#")):
        path, _, fragment = ref.partition("#")
        if path:
            target = relative_location(base, path)
            try:
                text = ctx.read(target)
                target_doc = _parse(text, target.target)[0]
            except GreenroomError as e:
                raise _Fail(f"$ref {ref} could not be read, {e.message}",
                            "point it at a readable file inside the location's tree or an allowed URL") from None
            except IndexError:
                raise _Fail(f"$ref {ref} points at an empty document", "fix the reference") from None
        else:  # an internal ref of an inlined external document
            target, target_doc = base, document
        key = (target, fragment)
        if key in active:
            return node  # a cycle: keep the reference rather than expanding forever
        active.add(key)
        try:
            resolved = _pointer(target_doc, fragment, path or target.target)
            return _bundle(resolved, target, target_doc, ctx, active, is_main=False)
        finally:
            active.discard(key)
    return {k: recurse(v) for k, v in node.items()}

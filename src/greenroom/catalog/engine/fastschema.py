"""A yes/no JSON-schema checker compiled to Python closures, for the hot path.

``jsonschema`` costs hundreds of microseconds per entity; catalog entities are nearly always
valid. :func:`compile_check` turns a draft-07 schema into ``check(value) -> bool`` that answers
exactly like ``jsonschema`` for the keywords it knows (type, required, properties,
additionalProperties, patternProperties, enum, const, minLength, maxLength, pattern, items,
minItems, maxItems, allOf, $ref). A schema using any other validation keyword raises
:class:`Unsupported`, and the caller uses ``jsonschema`` only. When ``check`` says False the caller
runs ``jsonschema`` to get the detailed errors, so this module never has to explain anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

# Keywords that never change the validation outcome (annotations, or handled elsewhere).
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default", "deprecated",
     "definitions", "readOnly", "writeOnly", "format"}
)
_SUPPORTED = frozenset(
    {"type", "required", "properties", "additionalProperties", "patternProperties", "enum", "const",
     "minLength", "maxLength", "pattern", "items", "minItems", "maxItems", "allOf", "$ref"}
)


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not implement."""


def _is_type(value: Any, name: str) -> bool:
    t = type(value)
    if name == "string":
        return t is str
    if name == "object":
        return t is dict
    if name == "array":
        return t is list
    if name == "boolean":
        return t is bool
    if name == "null":
        return value is None
    if name == "integer":
        return (t is int) or (t is float and value.is_integer())
    if name == "number":
        return t is int or t is float
    raise Unsupported(f"type {name}")


def _json_equal(a: Any, b: Any) -> bool:
    # JSON-schema equality: booleans are not numbers.
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return bool(a == b)


def compile_check(schema: Any, resolve: Callable[[str], Mapping[str, Any]]) -> Check:
    """Compile ``schema``; ``resolve(ref)`` returns the schema a ``$ref`` names (by ``$id``)."""
    cache: dict[int, Check] = {}
    return _compile(schema, resolve, cache)


def _compile(schema: Any, resolve: Callable[[str], Mapping[str, Any]], cache: dict[int, Check]) -> Check:
    if schema is True or schema == {}:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, Mapping):
        raise Unsupported("non-object schema")
    key = id(schema)
    if key in cache:
        return cache[key]
    if "$ref" in schema:
        # Draft 7: siblings of $ref are ignored.
        target = resolve(str(schema["$ref"]))
        holder: list[Check] = []

        def deferred(v: Any) -> bool:  # a recursive $ref: resolved once compiled
            return holder[0](v)

        cache[key] = deferred
        holder.append(_compile(target, resolve, cache))
        cache[key] = holder[0]
        return holder[0]
    unknown = set(schema) - _SUPPORTED - _ANNOTATIONS
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))

    checks: list[Check] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        for t in types:
            _is_type(None, t)  # raises Unsupported for unknown names
        checks.append(_type_check(tuple(types)))
    if "enum" in schema:
        checks.append(_enum_check(list(schema["enum"])))
    if "const" in schema:
        checks.append(_enum_check([schema["const"]]))
    if "minLength" in schema or "maxLength" in schema or "pattern" in schema:
        lo = int(schema.get("minLength", 0))
        hi = schema.get("maxLength")
        rx = re.compile(schema["pattern"]) if "pattern" in schema else None

        def string_check(v: Any, lo: int = lo, hi: Any = hi, rx: Any = rx) -> bool:
            if type(v) is not str:
                return True
            n = len(v)
            if n < lo or (hi is not None and n > hi):
                return False
            return rx is None or rx.search(v) is not None

        checks.append(string_check)
    if {"required", "properties", "additionalProperties", "patternProperties"} & set(schema):
        checks.append(_object_check(schema, resolve, cache))
    if {"items", "minItems", "maxItems"} & set(schema):
        checks.append(_array_check(schema, resolve, cache))
    for sub in schema.get("allOf", []):
        checks.append(_compile(sub, resolve, cache))

    if len(checks) == 1:
        result = checks[0]
    else:
        all_checks = tuple(checks)

        def result(v: Any) -> bool:
            for c in all_checks:
                if not c(v):
                    return False
            return True

    cache[key] = result
    return result


def _always(v: Any) -> bool:
    return True


def _never(v: Any) -> bool:
    return False


def _is_str(v: Any) -> bool:
    return type(v) is str


def _is_dict(v: Any) -> bool:
    return type(v) is dict


def _is_list(v: Any) -> bool:
    return type(v) is list


_SIMPLE_TYPES: dict[str, Check] = {"string": _is_str, "object": _is_dict, "array": _is_list}


def _type_check(types: tuple[str, ...]) -> Check:
    if len(types) == 1:
        name = types[0]
        if name in _SIMPLE_TYPES:
            return _SIMPLE_TYPES[name]

        def one(v: Any) -> bool:
            return _is_type(v, name)

        return one

    def several(v: Any) -> bool:
        return any(_is_type(v, t) for t in types)

    return several


def _enum_check(options: list[Any]) -> Check:
    def check(v: Any) -> bool:
        return any(_json_equal(v, o) for o in options)

    return check


def _object_check(schema: Mapping[str, Any], resolve: Any, cache: dict[int, Check]) -> Check:
    required = tuple(schema.get("required", []))
    props = {k: _compile(s, resolve, cache) for k, s in (schema.get("properties") or {}).items()}
    patterns = [(re.compile(p), _compile(s, resolve, cache)) for p, s in (schema.get("patternProperties") or {}).items()]
    additional = schema.get("additionalProperties", True)
    extra: Check | None = None if additional is True else _compile(additional, resolve, cache)
    prop_items = tuple(props.items())

    def check(v: Any) -> bool:
        if type(v) is not dict:
            return True
        for r in required:
            if r not in v:
                return False
        for name, c in prop_items:
            if name in v and not c(v[name]):
                return False
        if patterns or extra is not None:
            for k, item in v.items():
                matched = False
                for rx, c in patterns:
                    if rx.search(k):
                        matched = True
                        if not c(item):
                            return False
                if extra is not None and not matched and k not in props and not extra(item):
                    return False
        return True

    return check


def _array_check(schema: Mapping[str, Any], resolve: Any, cache: dict[int, Check]) -> Check:
    items = schema.get("items", True)
    if isinstance(items, list):
        raise Unsupported("tuple items")
    item_check = _compile(items, resolve, cache)
    lo = int(schema.get("minItems", 0))
    hi = schema.get("maxItems")

    def check(v: Any) -> bool:
        if type(v) is not list:
            return True
        if len(v) < lo or (hi is not None and len(v) > hi):
            return False
        for item in v:
            if not item_check(item):
                return False
        return True

    return check

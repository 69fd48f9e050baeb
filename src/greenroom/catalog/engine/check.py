"""Whole-entity validity: envelope, field formats, kind dispatch and schema, as :class:`Issue` lists.

:func:`check_entity` never raises for bad input; an empty list means valid. ``jsonschema`` errors
are translated into one issue per failing field with a one-sentence fix (what to add, remove,
move or change), so :func:`format_issue` can print ``file:line: ref: field: problem; fix``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema

from .validation import (
    BUILTIN_KINDS,
    KIND_SCHEMAS,
    LEGACY_TEMPLATE_API_VERSIONS,
    MIGRATE_URL,
    ROOT_FIELDS,
    TEMPLATE_API_VERSION,
    Issue,
    _schemas,
    _type_name,
    allowed_api_versions,
    check_fields,
    fast_check,
    jsonschema_validator,
    schema_candidates,
)
from .validation import (
    jsonschema_validator as _validator,
)

MAX_SCHEMA_ISSUES = 10
_REQUIRED_RE = re.compile(r"^'(.+)' is a required property$")


def check_entity(entity: Any, allowed_kinds: Iterable[str] | None = None) -> list[Issue]:
    """All reasons ``entity`` is not a valid catalog entity (empty when it is valid).

    ``allowed_kinds`` (case-insensitive kind names) restricts the kinds accepted, like
    Backstage's ``catalog.rules``.
    """
    if not isinstance(entity, dict):
        return [Issue((), f"expected an object at the document root, found {_type_name(entity)}",
                      "write the entity as a mapping with apiVersion, kind, metadata and spec")]
    envelope = _check_envelope(entity)
    if envelope:
        return envelope
    issues = check_fields(entity)
    kind, api_version = entity["kind"], entity["apiVersion"]
    if allowed_kinds is not None:
        allowed = sorted(allowed_kinds, key=str.lower)
        if kind.lower() not in {k.lower() for k in allowed}:
            return [*issues, Issue(("kind",), f"kind {kind} is not allowed here; allowed: {', '.join(allowed)}",
                                   "use an allowed kind or ask an admin to allow it in catalog.rules")]
    if kind == "Template" and api_version in LEGACY_TEMPLATE_API_VERSIONS:
        return [*issues, Issue(("apiVersion",), f"{api_version} templates are no longer supported",
                               f"migrate the template to {TEMPLATE_API_VERSION} (see {MIGRATE_URL})")]
    if kind not in KIND_SCHEMAS:
        near = [k for k in BUILTIN_KINDS if k.lower() == str(kind).lower()]
        fix = f"did you mean {near[0]}? kinds are case-sensitive" if near else "use one of the allowed kinds"
        return [*issues, Issue(("kind",), f"unknown kind {kind}; allowed: {', '.join(BUILTIN_KINDS)}", fix)]
    candidates = schema_candidates(entity)
    schema_id = candidates[0]
    versions = sorted({v for sid in candidates for v in allowed_api_versions(sid)})
    if versions and api_version not in versions:
        return [*issues, Issue(("apiVersion",), f"{api_version} is not a version of kind {kind}",
                               f"use {' or '.join(versions)}")]
    if issues:
        return issues
    for sid in candidates:
        check = fast_check(sid)
        if check(entity) if check is not None else _validator(sid).is_valid(entity):
            return []
    return _schema_issues(entity, schema_id)


def _check_envelope(entity: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for key, example in (("apiVersion", "backstage.io/v1alpha1"), ("kind", "Component")):
        value = entity.get(key)
        if value is None:
            issues.append(Issue((key,), "required", f"add {key}: {example}"))
        elif type(value) is not str or not value:
            issues.append(Issue((key,), f"must be a non-empty string, found {_type_name(value)}",
                                f"write it like {key}: {example}"))
    meta = entity.get("metadata")
    if meta is None:
        issues.append(Issue(("metadata",), "required", "add a metadata: section with a name"))
    elif not isinstance(meta, dict):
        issues.append(Issue(("metadata",), f"must be an object, found {_type_name(meta)}",
                            "write metadata as a mapping with at least a name"))
    else:
        name = meta.get("name")
        if name is None:
            issues.append(Issue(("metadata", "name"), "required", "add a name, e.g. name: my-service"))
        elif type(name) is not str or not name:
            issues.append(Issue(("metadata", "name"), f"must be a non-empty string, found {_type_name(name)}",
                                "write the name as text, e.g. name: my-service"))
        ns = meta.get("namespace")
        if ns is not None and (type(ns) is not str or not ns):
            issues.append(Issue(("metadata", "namespace"), f"must be a non-empty string, found {_type_name(ns)}",
                                "write the namespace as text, e.g. namespace: default, or remove it"))
    return issues


def _schema_issues(entity: Mapping[str, Any], schema_id: str) -> list[Issue]:
    validator = jsonschema_validator(schema_id)
    issues: list[Issue] = []
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    errors = sorted(validator.iter_errors(entity), key=lambda e: (len(e.absolute_path), str(list(e.absolute_path))))
    for error in errors:
        for issue in _explain(error, entity, schema_id):
            key = (issue.path, issue.problem)
            if key not in seen:
                seen.add(key)
                issues.append(issue)
        if len(issues) >= MAX_SCHEMA_ISSUES:
            break
    if not issues:  # the fast check and jsonschema disagree: trust jsonschema
        return []
    return issues


def _explain(error: jsonschema.ValidationError, entity: Mapping[str, Any], schema_id: str) -> list[Issue]:
    path = tuple(error.absolute_path)
    keyword = error.validator
    value = error.validator_value
    if keyword == "required":
        m = _REQUIRED_RE.match(error.message)
        missing = m.group(1) if m else str(value)
        return [Issue((*path, missing), "required", _add_fix(entity, (*path, missing), error.schema))]
    if keyword == "additionalProperties":
        known = set(error.schema.get("properties") or {})
        extras = [k for k in error.instance if k not in known] if isinstance(error.instance, dict) else []
        out = []
        for k in extras:
            if not path:
                spec_props = _spec_properties(schema_id)
                fix = (f"move it under spec (spec.{k})" if k in spec_props
                       else f"remove it; only {', '.join(ROOT_FIELDS)} are allowed at the top level")
                out.append(Issue((k,), "unknown top-level field", fix))
            else:
                out.append(Issue((*path, k), "unknown field", "remove it or check its spelling"))
        return out
    if keyword == "type":
        expected = value if isinstance(value, str) else " or ".join(value)
        return [Issue(path, f"must be {_article(expected)}, found {_type_name(error.instance)}",
                      f"write it as {_article(expected)}")]
    if keyword == "enum":
        return [Issue(path, f"{error.instance!r} is not allowed", f"use one of {', '.join(map(str, value))}")]
    if keyword == "const":
        return [Issue(path, f"{error.instance!r} is not allowed", f"use {value}")]
    if keyword == "minLength":
        return [Issue(path, "must not be empty", "give it a value or remove the field")]
    if keyword == "maxLength":
        return [Issue(path, f"longer than {value} characters", f"shorten it to at most {value} characters")]
    if keyword == "minItems":
        return [Issue(path, f"needs at least {value} entr{'y' if value == 1 else 'ies'}", "add the missing entries")]
    if keyword == "pattern":
        return [Issue(path, f"{error.instance!r} does not match {value}", "change it to match the pattern")]
    return [Issue(path, error.message, "change it to match the kind's schema")]


def _article(t: str) -> str:
    return f"an {t}" if t[:1] in "aeiou" else f"a {t}"


def _spec_properties(schema_id: str) -> set[str]:
    props: set[str] = set()
    for part in _schemas()[schema_id].get("allOf", []):
        spec = (part.get("properties") or {}).get("spec") or {}
        props |= set(spec.get("properties") or {})
    return props


def _add_fix(entity: Mapping[str, Any], path: tuple[str | int, ...], schema: Mapping[str, Any]) -> str:
    meta = entity.get("metadata") if isinstance(entity.get("metadata"), dict) else {}
    ns = str((meta or {}).get("namespace") or "default")
    field = ".".join(str(p) for p in path)
    name = path[-1]
    if field == "spec":
        req = []
        for part in schema.get("allOf", [schema]):
            req += ((part.get("properties") or {}).get("spec") or {}).get("required", [])
        return "add a spec: section" + (f" with {', '.join(req)}" if req else "")
    if name == "owner":
        return f"add group:{ns}/<team> (or user:{ns}/<person>)"
    if name == "system":
        return f"add system:{ns}/<system>"
    if name == "definition":
        return "add the API definition text, or a placeholder such as $text: ./openapi.yaml"
    prop = (schema.get("properties") or {}).get(str(name)) or {}
    examples = prop.get("examples") or (prop.get("items") or {}).get("examples")
    if isinstance(prop.get("enum"), list):
        return f"add {name}: one of {', '.join(map(str, prop['enum']))}"
    if examples:
        return f"add {name}, e.g. {', '.join(str(e) for e in examples[:3])}"
    if prop.get("type") == "array":
        return f"add {name} as a list"
    return f"add {name}"


def format_issue(issue: Issue, *, file: str | None, line: int | None, ref: str | None) -> str:
    """``file:line: ref: field: problem; fix`` (parts that are unknown are left out)."""
    where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
    who = f"{ref}: " if ref else ""
    field = f"{issue.field}: " if issue.path else ""
    return f"{where}{who}{field}{issue.problem}; {issue.fix}"

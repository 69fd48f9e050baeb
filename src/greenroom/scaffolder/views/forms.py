"""A template's parameter JSON schemas as an HTML form, and the posted form back as ``values``.

Model. Every parameter page (``spec.parameters[i]``) becomes a ``Section`` of ``Field``s; each
field has an HTML ``name`` (dotted for nested objects: ``db.port``) and a ``widget`` the template
``scaffolder/_fields.html`` knows how to draw. ``parse`` walks the same fields, so what the page
shows and what it reads can never disagree. Choices for catalog pickers come from the
``options(field_name, prop)`` callback the page passes in (it queries the catalog).

Invariants. A password field's value is never put back into the page. A number the user typed
that is not a number is kept as typed, so the server's validation names it and the user sees it
again. Empty text means "not given" (the key is left out), as an untouched form field in
Backstage's form. ``dependencies``/``oneOf`` branches are all shown, each with a note saying when
it applies; only the chosen branch is validated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft7Validator

from greenroom.scaffolder.model import FieldError

# Backstage's entity name rule (makeValidator().isValidObjectName).
ENTITY_NAME_PATTERN = r"^([A-Za-z0-9]+[-_.])*[A-Za-z0-9]+$"
PICKERS = frozenset({"EntityPicker", "OwnerPicker", "OwnedEntityPicker", "MyGroupsPicker",
                     "MultiEntityPicker"})


@dataclass
class Option:
    value: str
    label: str


@dataclass
class Field:
    name: str
    label: str
    widget: str  # text textarea password number checkbox select multi lines json tags repo picker
    description: str = ""
    required: bool = False
    value: Any = None
    options: list[Option] = field(default_factory=list)
    free_text: bool = False  # picker accepting values not in the list (a datalist)
    pattern: str | None = None
    step: str | None = None
    errors: list[str] = field(default_factory=list)
    autofocus: bool = False
    placeholder: str = ""
    repo: dict[str, Any] = field(default_factory=dict)  # RepoUrlPicker parts
    note: str = ""

    @property
    def dom_id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)


@dataclass
class Section:
    title: str
    description: str = ""
    fields: list[Field] = field(default_factory=list)
    note: str = ""


OptionsFor = Callable[[str, Mapping[str, Any]], list[Option]]


def _ordered(props: Mapping[str, Any], order: Any) -> list[str]:
    names = list(props)
    if not isinstance(order, list):
        return names
    head = [n for n in order if n in props]
    tail = [n for n in names if n not in head]
    if "*" in order:
        star = order.index("*")
        before = [n for n in order[:star] if n in props]
        after = [n for n in order[star + 1:] if n in props]
        return before + [n for n in names if n not in before and n not in after] + after
    return head + tail


def _get(values: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = values
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _set(values: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = values
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def _repo_parts(value: Any) -> dict[str, str]:
    """``host?owner=o&repo=r`` (RepoUrlPicker's value) into its parts."""
    if not isinstance(value, str) or not value:
        return {"host": "", "owner": "", "repo": ""}
    host, _, query = value.partition("?")
    pairs = dict(p.partition("=")[::2] for p in query.split("&") if p)
    return {"host": host, "owner": pairs.get("owner", ""), "repo": pairs.get("repo", "")}


def _field(name: str, prop: Mapping[str, Any], required: bool, values: Mapping[str, Any],
           options: OptionsFor) -> list[Field]:
    """One property as one field (or several, for a nested object)."""
    kind = prop.get("type")
    ui_field, ui_widget = prop.get("ui:field"), prop.get("ui:widget")
    raw_options = prop.get("ui:options")
    ui_options: Mapping[str, Any] = raw_options if isinstance(raw_options, Mapping) else {}
    label = str(prop.get("title") or name.rsplit(".", 1)[-1])
    current = _get(values, name)
    value = current if current is not None else prop.get("default")
    f = Field(name=name, label=label, widget="text", description=str(prop.get("description") or ""),
              required=required, value=value, autofocus=bool(prop.get("ui:autofocus")),
              placeholder=str(prop.get("ui:placeholder") or ""))
    if kind == "object" and isinstance(prop.get("properties"), Mapping) and not ui_field:
        inner_required = set(prop.get("required") or [])
        out: list[Field] = []
        for child in _ordered(prop["properties"], prop.get("ui:order")):
            child_prop = prop["properties"][child]
            if isinstance(child_prop, Mapping):
                out += _field(f"{name}.{child}", child_prop, child in inner_required, values, options)
        return out
    if ui_widget == "password" or ui_field == "Secret":
        f.widget, f.value = "password", None  # never echoed back
    elif ui_field == "RepoUrlPicker":
        hosts = [str(h) for h in ui_options.get("allowedHosts") or []]
        owners = [str(o) for o in ui_options.get("allowedOwners") or []]
        parts = _repo_parts(value)
        f.widget = "repo"
        f.repo = {"hosts": hosts or ([parts["host"]] if parts["host"] else []), "owners": owners, **parts}
    elif ui_field == "EntityTagsPicker" or (kind == "array" and ui_field == "EntityTagsPicker"):
        f.widget = "tags"
        f.value = ", ".join(map(str, value)) if isinstance(value, list) else (value or "")
        f.options = options(name, prop)
    elif ui_field in PICKERS:
        f.widget = "picker"
        f.options = options(name, prop)
        f.free_text = bool(ui_options.get("allowArbitraryValues", False))
        if ui_field == "MultiEntityPicker":
            f.widget = "multi"
    elif ui_field == "EntityNamePicker":
        f.pattern = str(prop.get("pattern") or ENTITY_NAME_PATTERN)
    elif "enum" in prop and isinstance(prop["enum"], list):
        f.widget = "select"
        names = prop["enumNames"] if isinstance(prop.get("enumNames"), list) else prop["enum"]
        f.options = [Option(json.dumps(v) if not isinstance(v, str) else v, str(n))
                     for v, n in zip(prop["enum"], names, strict=False)]
        f.value = value if isinstance(value, str) or value is None else json.dumps(value)
    elif kind == "boolean":
        f.widget = "checkbox"
        f.value = bool(value)
    elif kind in ("number", "integer"):
        f.widget, f.step = "number", ("1" if kind == "integer" else "any")
    elif kind == "array":
        raw_items = prop.get("items")
        items: Mapping[str, Any] = raw_items if isinstance(raw_items, Mapping) else {}
        if isinstance(items.get("enum"), list):
            f.widget = "multi"
            f.options = [Option(str(v), str(v)) for v in items["enum"]]
        elif items.get("type", "string") == "string":
            f.widget = "lines"
            f.value = "\n".join(map(str, value)) if isinstance(value, list) else (value or "")
        else:
            f.widget = "json"
            f.value = value if isinstance(value, str) else json.dumps(value if value is not None else [], indent=2)
    elif kind == "object":
        f.widget = "json"
        f.value = value if isinstance(value, str) else json.dumps(value if value is not None else {}, indent=2)
    elif ui_widget == "textarea":
        f.widget = "textarea"
    elif isinstance(prop.get("pattern"), str):
        f.pattern = prop["pattern"]
    if f.widget == "multi" and not isinstance(f.value, list):
        f.value = [] if f.value in (None, "") else [f.value]
    return [f]


def _branches(schema: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], list[str]]]:
    """``(note, properties, required)`` of every conditional part of a page schema."""
    out = []
    for key, dep in (schema.get("dependencies") or {}).items():
        if not isinstance(dep, Mapping):
            continue
        if isinstance(dep.get("properties"), Mapping):
            out.append((f"Used when “{key}” is given.", dep["properties"], list(dep.get("required") or [])))
        for branch in dep.get("oneOf") or []:
            if not isinstance(branch, Mapping):
                continue
            props = dict(branch.get("properties") or {})
            selector = props.pop(key, {}) or {}
            when = selector.get("const", selector.get("enum"))
            if props:
                out.append((f"Used when “{key}” is {json.dumps(when)}.", props,
                            [r for r in branch.get("required") or [] if r != key]))
    for part in schema.get("allOf") or []:
        if isinstance(part, Mapping) and isinstance(part.get("then"), Mapping):
            props = part["then"].get("properties") or {}
            if props:
                out.append(("Used when the condition on this page holds.", props,
                            list(part["then"].get("required") or [])))
    return out


def build(parameters: list[Mapping[str, Any]], values: Mapping[str, Any], options: OptionsFor,
          errors: Mapping[str, list[str]] | None = None) -> list[Section]:
    """The form's sections with ``values`` filled in and ``errors`` (by field name) attached."""
    errors = errors or {}
    sections: list[Section] = []
    seen: set[str] = set()
    for index, page in enumerate(parameters):
        section = Section(title=str(page.get("title") or f"Step {index + 1}"),
                          description=str(page.get("description") or ""))
        props = page.get("properties") or {}
        required = set(page.get("required") or [])
        for name in _ordered(props, page.get("ui:order")):
            if isinstance(props[name], Mapping) and name not in seen:
                seen.add(name)
                section.fields += _field(name, props[name], name in required, values, options)
        sections.append(section)
        for note, branch_props, branch_required in _branches(page):
            extra = Section(title=section.title, note=note)
            for name, prop in branch_props.items():
                if isinstance(prop, Mapping) and name not in seen:
                    seen.add(name)
                    extra.fields += _field(name, prop, name in branch_required, values, options)
            if extra.fields:
                sections.append(extra)
    for section in sections:
        for f in section.fields:
            f.errors = list(errors.get(f.name, []))
    return sections


def _number(raw: str, kind: str) -> Any:
    """An integer or float from the text typed; the text itself when it is not a number."""
    try:
        if kind == "integer" or re.fullmatch(r"[-+]?\d+", raw):
            return int(raw)
        return float(raw)
    except ValueError:
        return raw


def parse(sections: list[Section], form: Mapping[str, list[str]],
          parameters: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The posted form as ``values`` (types restored from the schemas)."""
    types = _types(parameters)
    values: dict[str, Any] = {}
    for section in sections:
        for f in section.fields:
            got = [v for v in form.get(f.name, [])]
            first = got[0].strip() if got else ""
            kind = types.get(f.name, "string")
            if f.widget == "checkbox":
                _set(values, f.name, bool(got))
            elif f.widget == "multi":
                if got:
                    _set(values, f.name, [v for v in got if v])
            elif f.widget == "repo":
                host = (form.get(f"{f.name}.host") or [""])[0].strip()
                owner = (form.get(f"{f.name}.owner") or [""])[0].strip()
                repo = (form.get(f"{f.name}.repo") or [""])[0].strip()
                if host or owner or repo:
                    _set(values, f.name, f"{host}?owner={owner}&repo={repo}")
            elif not first:
                continue
            elif f.widget == "tags":
                _set(values, f.name, [t.strip() for t in first.split(",") if t.strip()])
            elif f.widget == "lines":
                _set(values, f.name, [line.strip() for line in first.splitlines() if line.strip()])
            elif f.widget == "json":
                try:
                    _set(values, f.name, json.loads(first))
                except json.JSONDecodeError:
                    _set(values, f.name, first)  # validation names it: "is not of type 'object'"
            elif f.widget == "number" or kind in ("number", "integer"):
                _set(values, f.name, _number(first, kind))
            elif f.widget == "select" and kind not in ("string", None):
                try:
                    _set(values, f.name, json.loads(first))
                except json.JSONDecodeError:
                    _set(values, f.name, first)
            else:
                _set(values, f.name, got[0] if f.widget in ("password", "textarea") else first)
    return values


def _types(parameters: list[Mapping[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(props: Any, prefix: str) -> None:
        if not isinstance(props, Mapping):
            return
        for name, prop in props.items():
            if isinstance(prop, Mapping):
                out.setdefault(prefix + name, str(prop.get("type") or "string"))
                if prop.get("type") == "object":
                    walk(prop.get("properties"), f"{prefix}{name}.")

    for page in parameters:
        walk(page.get("properties"), "")
        for _, props, _ in _branches(page):
            walk(props, "")
    return out


def _chosen_branch_errors(parameters: list[Mapping[str, Any]], values: Mapping[str, Any]) -> list[tuple[list[str], str, str]]:
    """Errors inside the ``dependencies``/``oneOf`` branch the values chose (jsonschema reports a
    failing ``oneOf`` only as a whole, which names no field)."""
    out: list[tuple[list[str], str, str]] = []
    for page in parameters:
        for key, dep in (page.get("dependencies") or {}).items():
            if key not in values or not isinstance(dep, Mapping):
                continue
            for branch in dep.get("oneOf") or []:
                selector = ((branch or {}).get("properties") or {}).get(key) or {}
                if ("const" in selector and selector["const"] == values[key]) or (
                        "enum" in selector and values[key] in selector["enum"]):
                    for err in Draft7Validator(branch).iter_errors(dict(values)):
                        out.append(([str(p) for p in err.path], str(err.validator), err.message))
    return out


def errors_by_field(errors: list[FieldError], parameters: list[Mapping[str, Any]], values: Mapping[str, Any],
                    hidden: set[str]) -> dict[str, list[str]]:
    """Validation errors as short messages keyed by the dotted field name they are about.

    Messages never carry the value of a ``hidden`` (password) field: jsonschema quotes whole
    instances in some messages, so those are replaced by the failing branch's own errors."""
    found: list[tuple[list[str], str, str]] = []
    for e in errors:
        if e.name in ("oneOf", "anyOf"):
            inner = _chosen_branch_errors(parameters, values)
            found += inner or [([str(p) for p in e.path], e.name,
                                "This combination of values is not allowed; check the fields for your choice.")]
        else:
            found.append(([str(p) for p in e.path], e.name, e.message))
    secrets = [str(v) for k, v in values.items() if k in hidden and v]
    by_field: dict[str, list[str]] = {}
    for path, name, message in found:
        if name == "required":
            missing = re.match(r"'(.+)' is a required property", message)
            if missing:
                path = [*path, missing.group(1)]
                message = "Required: enter a value."
        elif name == "pattern":
            message = message.split(" does not match ", 1)[-1]
            message = f"Does not match the expected format ({message})."
        for secret in secrets:
            message = message.replace(secret, "••••")
        if message not in by_field.get(".".join(path), []):
            by_field.setdefault(".".join(path), []).append(message)
    return by_field


def widget_errors(sections: list[Section], values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Checks Backstage's form does in the browser for its custom fields (the backend never sees
    them): EntityNamePicker's name rule and RepoUrlPicker's owner and repository parts."""
    out: dict[str, list[str]] = {}
    for f in (f for s in sections for f in s.fields):
        value = _get(values, f.name)
        if f.pattern == ENTITY_NAME_PATTERN and isinstance(value, str) and (
                not re.fullmatch(ENTITY_NAME_PATTERN, value) or len(value) > 63):
            out.setdefault(f.name, []).append(
                "Not a valid entity name: use letters, digits and single - _ . between them (at most 63).")
        if f.widget == "repo" and isinstance(value, str):
            parts = _repo_parts(value)
            missing = [k for k in ("host", "owner", "repo") if not parts[k]]
            if missing:
                out.setdefault(f.name, []).append(f"Enter the repository's {' and '.join(missing)}.")
    return out


def attach_orphans(sections: list[Section], by_field: dict[str, list[str]]) -> list[str]:
    """Errors whose path is below a field go to that field; the rest are returned."""
    names = {f.name for s in sections for f in s.fields}
    orphans = []
    for key, messages in by_field.items():
        owner = next((n for n in sorted(names, key=len, reverse=True)
                      if key == n or key.startswith(n + ".")), None)
        if owner is None:
            orphans += [f"{key or 'form'}: {m}" for m in messages]
        elif owner != key:
            for s in sections:
                for f in s.fields:
                    if f.name == owner:
                        f.errors += messages
    return orphans

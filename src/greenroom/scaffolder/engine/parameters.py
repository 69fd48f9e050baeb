"""Server-side parameter handling: fill defaults as the form would, then validate every step.

The template's ``spec.parameters`` is a list of JSON schemas (one per form page) over one flat
``values`` object. ``apply_defaults`` fills ``default`` of properties the user left out, including
properties revealed by ``dependencies`` (``oneOf`` branches chosen by ``const``/``enum``) and
``allOf``/``if``/``then``. ``validate_parameters`` checks ``values`` against every page and returns
field errors shaped like Backstage's ``ValidationError`` (``instance.name``, message, ...).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft7Validator

from greenroom.scaffolder.model import FieldError, JsonObject, ParameterValidationError


def _fill(schema: Mapping[str, Any], values: JsonObject) -> None:
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            continue
        if name not in values and "default" in prop:
            values[name] = copy.deepcopy(prop["default"])
        if prop.get("type") == "object" and isinstance(values.get(name), dict):
            _fill(prop, values[name])
    for key, dep in (schema.get("dependencies") or {}).items():
        if key not in values or not isinstance(dep, Mapping):
            continue
        if "properties" in dep:
            _fill(dep, values)
        for branch in dep.get("oneOf") or []:
            selector = (branch.get("properties") or {}).get(key) or {}
            if ("const" in selector and selector["const"] == values[key]) or (
                "enum" in selector and values[key] in selector["enum"]
            ):
                _fill(branch, values)
    for part in schema.get("allOf") or []:
        if isinstance(part, Mapping) and "if" in part:
            branch = part.get("then") if Draft7Validator(part["if"]).is_valid(values) else part.get("else")
            if isinstance(branch, Mapping):
                _fill(branch, values)


def apply_defaults(parameters: list[JsonObject], values: Mapping[str, Any]) -> JsonObject:
    """A copy of ``values`` with form defaults filled in (user-given values always win)."""
    filled = copy.deepcopy(dict(values))
    for page in parameters:
        _fill(page, filled)
    return filled


def field_errors(parameters: list[JsonObject], values: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for page in parameters:
        for err in sorted(Draft7Validator(page).iter_errors(dict(values)), key=lambda e: list(e.path)):
            path = tuple(err.path)
            prop = "instance" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            errors.append(FieldError(path=path, property=prop, message=err.message, name=str(err.validator),
                                     argument=err.validator_value, instance=err.instance))
    return errors


def validate_parameters(parameters: list[JsonObject], values: Mapping[str, Any]) -> None:
    """Raise ``ParameterValidationError`` listing every field problem, if any."""
    errors = field_errors(parameters, values)
    if errors:
        raise ParameterValidationError(errors)


def secret_fields(parameters: list[JsonObject]) -> set[str]:
    """Names of properties whose values must never reach a log (password widgets, Secret fields)."""
    names: set[str] = set()

    def walk(schema: Any) -> None:
        if isinstance(schema, Mapping):
            for name, prop in (schema.get("properties") or {}).items():
                if isinstance(prop, Mapping) and (
                    prop.get("ui:widget") == "password" or prop.get("ui:field") == "Secret"
                ):
                    names.add(name)
            for value in schema.values():
                if isinstance(value, (Mapping, list)):
                    walk(value)
        elif isinstance(schema, list):
            for item in schema:
                walk(item)

    walk(parameters)
    return names

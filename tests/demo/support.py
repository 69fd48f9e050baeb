"""Shared helpers for the demo content tests: where the demo is, and the Backstage JSON schemas."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

import greenroom

DEMO = Path(greenroom.__file__).parent / "demo"

# The conformance corpus where present; the identical copy the catalog engine ships otherwise.
_SCHEMA_ROOTS = [
    Path("/work/shared/corpus/schemas"),
    Path(greenroom.__file__).parent / "catalog" / "engine" / "schemas",
]
SCHEMA_ROOT = next((p for p in _SCHEMA_ROOTS if p.is_dir()), None)

KIND_SCHEMA_IDS = {
    "Component": "ComponentV1alpha1",
    "API": "ApiV1alpha1",
    "Resource": "ResourceV1alpha1",
    "System": "SystemV1alpha1",
    "Domain": "DomainV1alpha1",
    "Group": "GroupV1alpha1",
    "User": "UserV1alpha1",
    "Location": "LocationV1alpha1",
    "Template": "TemplateV1beta3",
}


@functools.cache
def _validators() -> dict[str, Draft7Validator]:
    """One validator per schema $id, sharing a registry keyed by $id."""
    assert SCHEMA_ROOT is not None
    schemas = [json.loads(p.read_text()) for p in sorted(SCHEMA_ROOT.rglob("*.schema.json"))]
    registry: Registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s, default_specification=DRAFT7)) for s in schemas
    )
    return {s["$id"]: Draft7Validator(s, registry=registry) for s in schemas}


def schema_errors(entity: dict[str, Any]) -> list[str]:
    """Validate like Backstage: the envelope, then the kind's schema (which refers to Entity by $id)."""
    by_id = _validators()
    validators = [by_id["EntityEnvelope"], by_id[KIND_SCHEMA_IDS[entity["kind"]]]]
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for v in validators for e in v.iter_errors(entity)]


def mkdocs_problems(stderr: str) -> str:
    """MkDocs' warnings and errors, without the theme's banner."""
    lines = [line for line in stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    return "\n".join(lines) or stderr[-3000:]

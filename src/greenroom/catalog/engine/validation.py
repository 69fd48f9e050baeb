"""Entity validation: Backstage's field-format rules and its JSON schemas, as problems with fixes.

Model: :func:`check_entity` returns a list of :class:`Issue` (dotted field path, what is wrong,
the fix); an empty list means the entity is valid. The checks follow ``@backstage/catalog-model``:
1. the envelope (an object with ``apiVersion``, ``kind``, ``metadata.name``);
2. ``FieldFormatEntityPolicy`` (``KubernetesValidatorFunctions``): apiVersion, kind, name,
   namespace, label and annotation keys/values, tags, links;
3. the kind: built-in kinds by kind + apiVersion (+ ``spec.type`` for the API ``mcp-server`` and
   AiResource variants), ``Template`` at ``scaffolder.backstage.io/v1beta3``; legacy
   ``backstage.io/v1beta2`` templates and unknown kinds are refused;
4. the kind's JSON schema. Validators are compiled once per process. A compiled yes/no check
   (:mod:`.fastschema`) answers for valid entities; ``jsonschema`` runs only to explain failures.

:func:`format_issue` renders an issue as ``file:line: ref: field: problem; fix``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import referencing
import referencing.jsonschema

from .fastschema import Check, Unsupported, compile_check

SCHEMA_DIR = Path(__file__).parent / "schemas"
TEMPLATE_API_VERSION = "scaffolder.backstage.io/v1beta3"
LEGACY_TEMPLATE_API_VERSIONS = frozenset({"backstage.io/v1beta2", "backstage.io/v1beta1", "backstage.io/v1alpha1"})
ROOT_FIELDS = ("apiVersion", "kind", "metadata", "spec", "relations", "status")
MIGRATE_URL = "https://backstage.io/docs/features/software-templates/migrating-from-v1beta2-to-v1beta3"

# kind -> (default schema $id, {spec.type: variant schema $id})
KIND_SCHEMAS: dict[str, tuple[str, dict[str, str]]] = {
    "API": ("ApiV1alpha1", {"mcp-server": "ApiV1alpha1McpServer"}),
    "AiResource": (
        "AiResourceV1alpha1",
        {
            "skill": "AiResourceV1alpha1Skill",
            "rule": "AiResourceV1alpha1Rule",
            "plugin": "AiResourceV1alpha1Plugin",
            "marketplace": "AiResourceV1alpha1Marketplace",
        },
    ),
    "Component": ("ComponentV1alpha1", {}),
    "Domain": ("DomainV1alpha1", {}),
    "Group": ("GroupV1alpha1", {}),
    "Location": ("LocationV1alpha1", {}),
    "Resource": ("ResourceV1alpha1", {}),
    "System": ("SystemV1alpha1", {}),
    "Template": ("TemplateV1beta3", {}),
    "User": ("UserV1alpha1", {}),
}
BUILTIN_KINDS = tuple(sorted(KIND_SCHEMAS, key=str.lower))


@dataclass(frozen=True, slots=True)
class Issue:
    """One reason an entity is invalid: ``path`` inside the entity, the problem and its fix."""

    path: tuple[str | int, ...]
    problem: str
    fix: str

    @property
    def field(self) -> str:
        return ".".join(str(p) for p in self.path)


# ---------------------------------------------------------------------------------------------
# Field formats (KubernetesValidatorFunctions / CommonValidatorFunctions)

_DNS_LABEL = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_OBJECT_NAME = re.compile(r"^(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_KIND = re.compile(r"^[a-zA-Z][a-z0-9A-Z]*$")
_API_VERSION_SUFFIX = re.compile(r"^[a-z0-9A-Z]+$")
_TAG = re.compile(r"^[a-z0-9:+#]+(?:-[a-z0-9:+#]+)*$")


def is_dns_label(v: Any) -> bool:
    return type(v) is str and 1 <= len(v) <= 63 and _DNS_LABEL.match(v) is not None


def is_dns_subdomain(v: Any) -> bool:
    return type(v) is str and 1 <= len(v) <= 253 and all(is_dns_label(p) for p in v.split("."))


def is_object_name(v: Any) -> bool:
    return type(v) is str and 1 <= len(v) <= 63 and _OBJECT_NAME.match(v) is not None


def _prefix_and_or_suffix(v: Any, prefix: Callable[[str], bool], suffix: Callable[[str], bool]) -> bool:
    if type(v) is not str:
        return False
    parts = v.split("/")
    if len(parts) == 1:
        return suffix(parts[0])
    return len(parts) == 2 and prefix(parts[0]) and suffix(parts[1])


def is_api_version(v: Any) -> bool:
    return _prefix_and_or_suffix(
        v, is_dns_subdomain, lambda s: 1 <= len(s) <= 63 and _API_VERSION_SUFFIX.match(s) is not None
    )


def is_kind(v: Any) -> bool:
    return type(v) is str and 1 <= len(v) <= 63 and _KIND.match(v) is not None


@lru_cache(maxsize=4096)
def _is_key(v: str) -> bool:
    return _prefix_and_or_suffix(v, is_dns_subdomain, is_object_name)


def is_label_key(v: Any) -> bool:
    # Label and annotation keys repeat across nearly every entity: cache the verdict.
    return type(v) is str and _is_key(v)


def is_label_value(v: Any) -> bool:
    return v == "" or is_object_name(v)


@lru_cache(maxsize=4096)
def _is_tag(v: str) -> bool:
    return 1 <= len(v) <= 63 and _TAG.match(v) is not None


def is_tag(v: Any) -> bool:
    return type(v) is str and _is_tag(v)


def is_url(v: Any) -> bool:
    if type(v) is not str:
        return False
    parts = urlsplit(v)
    return bool(parts.scheme) and (bool(parts.netloc) or bool(parts.path))


_NAME_RULE = "sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total"
_DNS_RULE = "sequences of [a-z0-9] separated by [-], at most 63 characters in total"


def _suggest_name(value: Any) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(value)).strip("-_.")[:63].strip("-_.")
    return s or "my-entity"


def _suggest_dns(value: Any) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")[:63].strip("-")
    return s or "default"


def check_fields(entity: Mapping[str, Any]) -> list[Issue]:
    """FieldFormatEntityPolicy: formats of the envelope fields (assumes the envelope is present)."""
    issues: list[Issue] = []
    meta = entity["metadata"]
    api_version, kind, name = entity["apiVersion"], entity["kind"], meta["name"]
    if not is_api_version(api_version):
        issues.append(Issue(("apiVersion",), f'"{api_version}" is not a valid prefix and/or suffix',
                            "use e.g. backstage.io/v1alpha1"))
    if not is_kind(kind):
        issues.append(Issue(("kind",), f'"{kind}" is not a sequence of [a-zA-Z][a-z0-9A-Z], at most 63 characters',
                            f"use one of {', '.join(BUILTIN_KINDS)}"))
    if not is_object_name(name):
        issues.append(Issue(("metadata", "name"), f'"{name}" is not valid; expected {_NAME_RULE}',
                            f"rename it, e.g. {_suggest_name(name)}"))
    namespace = meta.get("namespace")
    if namespace is not None and not is_dns_label(namespace):
        issues.append(Issue(("metadata", "namespace"), f'"{namespace}" is not valid; expected {_DNS_RULE}',
                            f"use e.g. {_suggest_dns(namespace)}"))
    for section in ("labels", "annotations"):
        values = meta.get(section)
        if not isinstance(values, dict):
            continue  # a wrong type is reported by the schema
        for k, v in values.items():
            if not is_label_key(k):
                issues.append(Issue(("metadata", section, k), f'key "{k}" is not a valid prefix and/or suffix',
                                    "use a key like example.com/some-name (a DNS prefix, one '/', a name)"))
            if section == "labels" and not is_label_value(v):
                issues.append(Issue(("metadata", section, k), f'"{v}" is not valid; expected {_NAME_RULE}',
                                    f"use e.g. {_suggest_name(v)}"))
            if section == "annotations" and type(v) is not str:
                issues.append(Issue(("metadata", section, k), f"must be a string, found {_type_name(v)}",
                                    "quote the value"))
    tags = meta.get("tags")
    if isinstance(tags, list):
        for i, tag in enumerate(tags):
            if not is_tag(tag):
                issues.append(Issue(("metadata", "tags", i), f'"{tag}" is not valid; expected sequences of '
                                    "[a-z0-9+#] separated by [-], at most 63 characters in total",
                                    f"use e.g. {_suggest_dns(tag)}"))
    links = meta.get("links")
    if isinstance(links, list):
        for i, link in enumerate(links):
            if not isinstance(link, dict):
                continue
            if not is_url(link.get("url")):
                issues.append(Issue(("metadata", "links", i, "url"), f'"{link.get("url")}" is not a valid url',
                                    "give an absolute URL like https://example.com/page"))
            title = link.get("title")
            if title is not None and not (type(title) is str and title.strip()):
                issues.append(Issue(("metadata", "links", i, "title"), "must be a non-empty string",
                                    "give the link a title or remove the field"))
            icon = link.get("icon")
            if icon is not None and not is_object_name(icon):
                issues.append(Issue(("metadata", "links", i, "icon"), f'"{icon}" is not valid; expected {_NAME_RULE}',
                                    "use an icon name like dashboard"))
    return issues


def _type_name(v: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


# ---------------------------------------------------------------------------------------------
# Schemas

@cache
def _schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(SCHEMA_DIR.rglob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        out[schema["$id"]] = schema
    return out


@cache
def _registry() -> referencing.Registry:
    resources = [
        (sid, referencing.Resource.from_contents(s, default_specification=referencing.jsonschema.DRAFT7))
        for sid, s in _schemas().items()
    ]
    return referencing.Registry().with_resources(resources).crawl()


@cache
def _anchor_index() -> dict[str, Any]:
    index: dict[str, Any] = {}
    for schema in _schemas().values():
        for sub in (schema.get("definitions") or {}).values():
            anchor = sub.get("$id", "")
            if isinstance(anchor, str) and anchor.startswith("#"):
                index[anchor[1:]] = sub
    return index


def _resolve(ref: str) -> Mapping[str, Any]:
    base, _, anchor = ref.partition("#")
    found: Mapping[str, Any] = _anchor_index()[anchor] if anchor else _schemas()[base]
    return found


@cache
def jsonschema_validator(schema_id: str) -> jsonschema.protocols.Validator:
    """The (cached) ``jsonschema`` validator of a schema, with refs resolved by ``$id``."""
    schema = _schemas()[schema_id]
    return jsonschema.Draft7Validator(schema, registry=_registry())


@cache
def fast_check(schema_id: str) -> Check | None:
    """The (cached) compiled yes/no check of a schema, or None when it needs full ``jsonschema``."""
    try:
        return compile_check(_schemas()[schema_id], _resolve)
    except (Unsupported, KeyError):
        return None


def allowed_api_versions(schema_id: str) -> list[str]:
    for part in _schemas()[schema_id].get("allOf", []):
        enum = ((part.get("properties") or {}).get("apiVersion") or {}).get("enum")
        if enum:
            return list(enum)
    return []


def schema_candidates(entity: Mapping[str, Any]) -> list[str]:
    """The schema ``$id``s a (known-kind) entity may satisfy, most specific first.

    Like Backstage's ``validateEntityKind`` (any registered validator of the kind may accept the
    entity): the ``spec.type`` variant first (API ``mcp-server``, AiResource ``skill``...), then
    the kind's default schema. The first one is the one failures are explained with.
    """
    default, variants = KIND_SCHEMAS[entity["kind"]]
    spec = entity.get("spec")
    if variants and isinstance(spec, dict):
        spec_type = spec.get("type")
        if isinstance(spec_type, str) and spec_type in variants:
            return [variants[spec_type], default]
    return [default]


def warm_up() -> None:
    """Build every validator now (e.g. at start-up) instead of on first use."""
    for default, variants in KIND_SCHEMAS.values():
        for sid in (default, *variants.values()):
            jsonschema_validator(sid)
            fast_check(sid)

"""Relations of built-in kinds, both directions, as Backstage's BuiltinKindsEntityProcessor emits them.

Model: a table ``kind -> [(spec field, default kind, forward, reverse)]``. Each target of a field
(a string or a list of strings) is parsed with :func:`parse_entity_ref` using the field's default
kind and the entity's own namespace; the entity gets ``self -forward-> target`` and the target
``target -reverse-> self``. Targets need not exist (dangling relations are kept). ``dependsOn`` and
``dependencyOf`` have no default kind, exactly like Backstage, so a bare name there is an error.
AiResource follows the ``aiResourceEntityModel`` layer (owner, system, skill ``dependsOn``,
plugin ``skills`` -> ``hasSkill``/``skillOf``, marketplace ``plugins`` -> ``hasPlugin``/``pluginOf``).

Failure behaviour: an unparsable target raises :class:`RelationError` carrying the field path,
so the caller can reject the entity with a precise problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from greenroom.catalog.model import DEFAULT_NAMESPACE, Relation
from greenroom.core.errors import InputError

from .refs import parse_entity_ref

RELATION_HAS_SKILL = "hasSkill"
RELATION_SKILL_OF = "skillOf"
RELATION_HAS_PLUGIN = "hasPlugin"
RELATION_PLUGIN_OF = "pluginOf"

Rule = tuple[str, str | None, str, str]

_OWNER: Rule = ("owner", "Group", "ownedBy", "ownerOf")
_SYSTEM: Rule = ("system", "System", "partOf", "hasPart")
_DEPENDS_ON: Rule = ("dependsOn", None, "dependsOn", "dependencyOf")
_DEPENDENCY_OF: Rule = ("dependencyOf", None, "dependencyOf", "dependsOn")

RULES: dict[str, list[Rule]] = {
    "Component": [
        _OWNER,
        ("subcomponentOf", "Component", "partOf", "hasPart"),
        ("providesApis", "API", "providesApi", "apiProvidedBy"),
        ("consumesApis", "API", "consumesApi", "apiConsumedBy"),
        _DEPENDS_ON,
        _DEPENDENCY_OF,
        _SYSTEM,
    ],
    "API": [_OWNER, _SYSTEM],
    "Resource": [_OWNER, _DEPENDS_ON, _DEPENDENCY_OF, _SYSTEM],
    "User": [("memberOf", "Group", "memberOf", "hasMember")],
    "Group": [
        ("parent", "Group", "childOf", "parentOf"),
        ("children", "Group", "parentOf", "childOf"),
        ("members", "User", "hasMember", "memberOf"),
    ],
    "System": [_OWNER, ("domain", "Domain", "partOf", "hasPart")],
    "Domain": [_OWNER, ("subdomainOf", "Domain", "partOf", "hasPart")],
}

AI_RESOURCE_RULES: dict[str | None, list[Rule]] = {
    None: [_OWNER, _SYSTEM],
    "skill": [_OWNER, _SYSTEM, ("dependsOn", "AiResource", "dependsOn", "dependencyOf")],
    "rule": [_OWNER, _SYSTEM],
    "plugin": [_OWNER, _SYSTEM, ("skills", "AiResource", RELATION_HAS_SKILL, RELATION_SKILL_OF)],
    "marketplace": [_OWNER, _SYSTEM, ("plugins", "AiResource", RELATION_HAS_PLUGIN, RELATION_PLUGIN_OF)],
}

# Relation pairs beyond model.RELATION_PAIRS (AiResource layer), for stitching and display.
EXTRA_RELATION_PAIRS: tuple[tuple[str, str], ...] = (
    (RELATION_HAS_SKILL, RELATION_SKILL_OF),
    (RELATION_HAS_PLUGIN, RELATION_PLUGIN_OF),
)


class RelationError(InputError):
    """A relation target could not be parsed; ``field`` is its dotted path (``spec.owner``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _rules_for(entity: Mapping[str, Any]) -> list[Rule]:
    kind = entity.get("kind")
    if kind == "AiResource":
        spec_type = (entity.get("spec") or {}).get("type")
        return AI_RESOURCE_RULES.get(spec_type, AI_RESOURCE_RULES[None])
    return RULES.get(str(kind), [])


def relations_of(entity: Mapping[str, Any]) -> list[Relation]:
    """Every relation the entity implies, both directions, in Backstage's emission order.

    Raises RelationError for a target that is not a valid ref (e.g. ``dependsOn: [foo]``).
    """
    rules = _rules_for(entity)
    if not rules:
        return []
    meta = entity["metadata"]
    namespace = meta.get("namespace") or DEFAULT_NAMESPACE
    self_ref = f"{str(entity['kind']).lower()}:{namespace.lower()}/{str(meta['name']).lower()}"
    spec = entity.get("spec") or {}
    out: list[Relation] = []
    for field, default_kind, forward, reverse in rules:
        targets = spec.get(field)
        if not targets:
            continue
        for i, target in enumerate(targets if isinstance(targets, list) else [targets]):
            path = f"spec.{field}" + (f".{i}" if isinstance(targets, list) else "")
            if type(target) is str and default_kind and ":" not in target and "/" not in target and target:
                # Fast path for the common bare name: same result as parse_entity_ref.
                target_ref = f"{default_kind}:{namespace}/{target}".lower()
            else:
                if not isinstance(target, (str, dict)):
                    raise RelationError(f"Entity reference {target!r} must be a string", path)
                try:
                    name = parse_entity_ref(target, default_kind=default_kind, default_namespace=namespace)
                except InputError as e:
                    raise RelationError(e.message, path) from None
                target_ref = name.ref
            out.append(Relation(self_ref, forward, target_ref))
            out.append(Relation(target_ref, reverse, self_ref))
    return out

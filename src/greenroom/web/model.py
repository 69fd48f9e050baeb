"""Shapes of the web shell: navigation entries, entity page tabs and the relation vocabulary.

No I/O here. Other contexts plug into the shell by existing: a navigation entry or a tab names
the service it needs (``portal.services[<name>]``) and appears only when that service is wired.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

Entity = Mapping[str, Any]


@dataclass(frozen=True)
class NavItem:
    """One header link. ``service`` None means always shown (to a signed-in user)."""

    key: str
    label: str
    href: str
    service: str | None = None


# Order is the order in the header. Create/Docs/Workspaces link to pages their contexts serve.
NAVIGATION: tuple[NavItem, ...] = (
    NavItem("catalog", "Catalog", "/catalog", "catalog"),
    NavItem("apis", "APIs", "/catalog?kind=api", "catalog"),
    NavItem("create", "Create", "/create", "scaffolder"),
    NavItem("docs", "Docs", "/docs", "techdocs"),
    NavItem("workspaces", "Workspaces", "/workspaces", "workspaces"),
    NavItem("teams", "Teams", "/catalog?kind=group", "catalog"),
    NavItem("forge", "Repositories", "/forge", "forge"),
)


class TabProvider(Protocol):
    """What a service implements to fill an entity tab with its own content.

    ``entity_tab(tab, entity, principal)`` returns trusted HTML (the service escapes what it
    embeds) or None when it has nothing for this entity; the shell then shows a placeholder.
    """

    def entity_tab(self, tab: str, entity: Entity, principal: Any) -> str | None: ...


@dataclass(frozen=True)
class EntityTab:
    """A tab on the entity page, shown when its service exists and ``applies(entity)``."""

    key: str
    label: str
    service: str | None = None
    applies: Callable[[Entity], bool] = lambda _e: True
    empty_hint: str = ""


def _kind(entity: Entity) -> str:
    return str(entity.get("kind", "")).lower()


def _annotations(entity: Entity) -> Mapping[str, Any]:
    meta = entity.get("metadata") or {}
    return meta.get("annotations") or {}


ENTITY_TABS: tuple[EntityTab, ...] = (
    EntityTab("overview", "Overview"),
    EntityTab("definition", "Definition", applies=lambda e: _kind(e) == "api"),
    EntityTab("docs", "Docs", "techdocs",
              empty_hint="Add the annotation backstage.io/techdocs-ref: dir:. and a mkdocs.yml "
                         "next to catalog-info.yaml to publish docs here."),
    EntityTab("workspaces", "Workspaces", "workspaces", applies=lambda e: _kind(e) == "component",
              empty_hint="No workspace for this component yet."),
    EntityTab("trust", "Trust", "trust",
              empty_hint="No checks have run for this entity yet."),
    EntityTab("yaml", "YAML"),
)


# Backstage's relation pairs: (forward, reverse). The graph draws each pair once, forward.
RELATION_PAIRS: tuple[tuple[str, str], ...] = (
    ("ownerOf", "ownedBy"),
    ("hasPart", "partOf"),
    ("providesApi", "apiProvidedBy"),
    ("consumesApi", "apiConsumedBy"),
    ("dependsOn", "dependencyOf"),
    ("parentOf", "childOf"),
    ("hasMember", "memberOf"),
)
REVERSE: dict[str, str] = {a: b for a, b in RELATION_PAIRS} | {b: a for a, b in RELATION_PAIRS}
FORWARD: frozenset[str] = frozenset(a for a, _ in RELATION_PAIRS)

# Human labels for the relations card on the entity page.
RELATION_LABELS: dict[str, str] = {
    "ownedBy": "Owned by", "ownerOf": "Owns", "partOf": "Part of", "hasPart": "Has parts",
    "providesApi": "Provides APIs", "apiProvidedBy": "Provided by",
    "consumesApi": "Consumes APIs", "apiConsumedBy": "Consumed by",
    "dependsOn": "Depends on", "dependencyOf": "Dependency of",
    "parentOf": "Parent of", "childOf": "Child of", "hasMember": "Members", "memberOf": "Member of",
}


@dataclass(frozen=True)
class Ref:
    """A parsed, lower-cased entity ref with its page path."""

    kind: str
    namespace: str
    name: str

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}"

    @property
    def path(self) -> str:
        return f"/catalog/{self.namespace}/{self.kind}/{self.name}"

    @property
    def short(self) -> str:
        """How Backstage shows a ref: namespace omitted when default."""
        ns = "" if self.namespace == "default" else f"{self.namespace}/"
        return f"{ns}{self.name}"


def parse_ref(ref: str, default_kind: str = "component") -> Ref:
    """``kind:namespace/name`` with kind and namespace optional; never raises (pages show what
    they get, odd or not)."""
    kind, sep, rest = ref.partition(":")
    if not sep:
        kind, rest = default_kind, ref
    ns, sep, name = rest.partition("/")
    if not sep:
        ns, name = "default", rest
    return Ref(kind.strip().lower() or default_kind, ns.strip().lower() or "default", name.strip().lower())


def entity_ref(entity: Entity) -> Ref:
    meta = entity.get("metadata") or {}
    return Ref(str(entity.get("kind", "")).lower(), str(meta.get("namespace") or "default").lower(),
               str(meta.get("name", "")).lower())

"""Choices for the form's catalog pickers, read from the catalog service on the server.

Backstage's pickers query the catalog from the browser; here the page asks once while rendering
and draws a ``<select>`` (or a ``<datalist>`` when the template allows arbitrary values). The
value of an option is the full entity ref (``group:default/dock-ops``), which every template
filter (``parseEntityRef``) and the catalog understand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from greenroom.auth.model import Principal
from greenroom.catalog import service as catalog_service
from greenroom.scaffolder.views.forms import Option

LIMIT = 1000  # more choices than this is not a usable <select>; the list says "first 1000"
FIELDS = ["kind", "metadata.name", "metadata.namespace", "metadata.title", "spec.type", "spec.profile.displayName"]


def _ref(e: Mapping[str, Any]) -> str:
    meta = e.get("metadata") or {}
    return f"{str(e.get('kind', '')).lower()}:{meta.get('namespace') or 'default'}/{meta.get('name')}"


def _label(e: Mapping[str, Any]) -> str:
    meta = e.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    name = meta.get("name") if ns == "default" else f"{ns}/{meta.get('name')}"
    title = meta.get("title") or ((e.get("spec") or {}).get("profile") or {}).get("displayName")
    kind = str(e.get("kind", "")).lower()
    return f"{title} ({name}, {kind})" if title else f"{name} ({kind})"


def _filters(raw: Any) -> list[dict[str, list[str] | None]]:
    """Backstage's ``catalogFilter`` (an object or a list of objects; values a string, a list, or
    ``{exists: true}``) as the catalog service's filter."""
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, Mapping) else []
    out: list[dict[str, list[str] | None]] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        one: dict[str, list[str] | None] = {}
        for key, value in item.items():
            if isinstance(value, list):
                one[str(key)] = [str(v) for v in value]
            elif isinstance(value, Mapping) or value is None or value is True:
                one[str(key)] = None
            else:
                one[str(key)] = [str(value)]
        out.append(one)
    return out


class PickerOptions:
    """``options(field_name, prop)`` for ``forms.build``; one catalog query per picker field."""

    def __init__(self, catalog: catalog_service.CatalogService, principal: Principal | None) -> None:
        self.catalog = catalog
        self.principal = principal
        self._groups: list[str] | None = None

    def _query(self, filters: list[dict[str, list[str] | None]]) -> list[Option]:
        page = self.catalog.query(catalog_service.EntityQuery(
            filters=filters, fields=FIELDS, order=[("metadata.name", "asc")], limit=LIMIT))
        return [Option(_ref(e), _label(e)) for e in page.items]

    def my_groups(self) -> list[str]:
        """Refs of the groups the signed-in user is a member of (from the catalog's relations)."""
        if self._groups is None:
            subject = self.principal.subject if self.principal else ""
            groups = set(self.principal.groups) if self.principal else set()
            if subject.startswith("user:"):
                page = self.catalog.query(catalog_service.EntityQuery(
                    filters=[{"kind": ["group"], "relations.hasMember": [subject]}], fields=FIELDS))
                groups |= {_ref(e) for e in page.items}
            self._groups = sorted(groups)
        return self._groups

    def __call__(self, name: str, prop: Mapping[str, Any]) -> list[Option]:
        ui_field = prop.get("ui:field")
        raw_options = prop.get("ui:options")
        opts: Mapping[str, Any] = raw_options if isinstance(raw_options, Mapping) else {}
        if ui_field == "MyGroupsPicker":
            found = [e for e in self.catalog.by_refs(self.my_groups(), FIELDS) if e is not None]
            return [Option(_ref(e), _label(e)) for e in found]
        if ui_field == "OwnedEntityPicker":
            mine = [*self.my_groups(), *([self.principal.subject] if self.principal else [])]
            if not mine:
                return []
            base = _filters(opts.get("catalogFilter")) or [{}]
            kinds = opts.get("allowedKinds")
            return self._query([{**f, "relations.ownedBy": mine,
                                 **({"kind": [str(k) for k in kinds]} if kinds else {})} for f in base])
        if ui_field == "EntityTagsPicker":
            kinds = opts.get("kinds")
            facet = self.catalog.facets(["metadata.tags"], [{"kind": [str(k) for k in kinds]}] if kinds else [])
            return [Option(str(v["value"]), str(v["value"])) for v in facet["facets"]["metadata.tags"]][:LIMIT]
        filters = _filters(opts.get("catalogFilter"))
        kinds = opts.get("allowedKinds")
        if ui_field == "OwnerPicker" and not kinds and not filters:
            kinds = ["Group", "User"]
        if kinds:
            filters = [{**f, "kind": [str(k) for k in kinds]} for f in (filters or [{}])]
        return self._query(filters)

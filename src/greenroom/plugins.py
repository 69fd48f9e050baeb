"""Extension points: Python entry-point groups read once at start into a frozen registry.

Groups: ``greenroom.catalog.processors``, ``greenroom.catalog.providers``,
``greenroom.scaffolder.actions``, ``greenroom.workspaces.runtimes``. Each entry point names an
object satisfying the Protocol in that context's ``model.py``. Built-ins register the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

log = logging.getLogger("greenroom.plugins")

GROUPS = (
    "greenroom.catalog.processors",
    "greenroom.catalog.providers",
    "greenroom.scaffolder.actions",
    "greenroom.workspaces.runtimes",
)


def load(group: str) -> Mapping[str, Any]:
    """Load every entry point of ``group``; a broken plugin is logged and skipped, never fatal."""
    found: dict[str, Any] = {}
    for ep in entry_points(group=group):
        try:
            found[ep.name] = ep.load()
        except Exception:  # noqa: BLE001 - one bad plugin must not stop the portal
            log.exception("plugin.load_failed", extra={"fields": {"group": group, "name": ep.name}})
    return MappingProxyType(found)


def load_all() -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({g: load(g) for g in GROUPS})

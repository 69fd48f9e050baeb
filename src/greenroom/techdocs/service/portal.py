"""What the portal's docs pages need beyond one page: the docs home rows and the entity's Docs tab.

The Docs tab is HTML the web shell inserts as is (``web.model.TabProvider``), so everything from
an entity or a build is escaped here; the docs body itself is the sanitized page body.
"""

from __future__ import annotations

import html as htmllib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from greenroom.core.errors import GreenroomError, NotFoundError
from greenroom.techdocs.model import TECHDOCS_REF, BuildStatus, EntityTriple

if TYPE_CHECKING:
    from greenroom.techdocs.service import TechDocsService

HOW_TO_ADD = ("Add the annotation <code>backstage.io/techdocs-ref: dir:.</code> to the entity’s "
              "<code>catalog-info.yaml</code> and put a <code>mkdocs.yml</code> (with "
              "<code>plugins: [techdocs-core]</code>) and a <code>docs/index.md</code> beside it.")


@dataclass(frozen=True)
class DocumentedEntity:
    """One row of the docs home."""

    triple: EntityTriple
    title: str
    description: str
    kind: str
    owner: str
    status: str
    built_at: float | None
    freshness: str
    lag_days: int | None
    broken_links: int
    error: str | None

    @property
    def href(self) -> str:
        return f"/docs/{self.triple.path}/"


def _entities(service: TechDocsService, refs: list[str]) -> list[Mapping[str, Any] | None]:
    by_refs = getattr(service.entities, "by_refs", None)
    if by_refs is not None:  # the catalog reads them in one query
        return list(by_refs(refs))
    return [service.entities.get_entity(r) for r in refs]


def documented_entities(service: TechDocsService, text: str = "", owner: str = "") -> list[DocumentedEntity]:
    """Every entity with a docs build that is still in the catalog, by title; ``text`` matches
    name, title and description, ``owner`` the owner ref (both case-insensitive)."""
    statuses = service.list_documented()
    entities = _entities(service, [s["entityRef"] for s in statuses])
    needle, want_owner = text.strip().lower(), owner.strip().lower()
    rows = []
    for status, entity in zip(statuses, entities, strict=True):
        if entity is None:
            continue
        meta, spec = entity.get("metadata") or {}, entity.get("spec") or {}
        row = DocumentedEntity(
            triple=EntityTriple.parse(status["entityRef"]),
            title=str(meta.get("title") or status.get("siteName") or meta.get("name", "")),
            description=str(meta.get("description") or ""), kind=str(entity.get("kind", "")),
            owner=str(spec.get("owner") or ""), status=status["status"], built_at=status.get("builtAt"),
            freshness=status.get("freshness") or "", lag_days=status.get("freshnessLagDays"),
            broken_links=len(status.get("brokenLinks") or []), error=status.get("error"))
        if want_owner and row.owner.lower() != want_owner:
            continue
        hay = f"{meta.get('name', '')} {row.title} {row.description} {status.get('siteName') or ''}".lower()
        if needle and needle not in hay:
            continue
        rows.append(row)
    return sorted(rows, key=lambda r: (r.title.lower(), r.triple.ref))


def _ago(ts: float | None) -> str:
    if not ts:
        return "never"
    delta = max(0.0, time.time() - float(ts))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if delta >= size:
            return f"{int(delta // size)} {unit} ago"
    return f"{int(delta)} s ago"


def _status_badge(status: str | None) -> str:
    cls = {"succeeded": "ok", "failed": "danger"}.get(status or "", "")
    return f'<span class="badge {cls}">{htmllib.escape(status or "not built")}</span>'


def entity_tab(service: TechDocsService, tab: str, entity: Mapping[str, Any]) -> str | None:
    """The Docs tab: status line, a link to the docs and the docs home page inline. None when the
    entity has no docs (the shell then shows how to add them)."""
    if tab != "docs":
        return None
    annotations = (entity.get("metadata") or {}).get("annotations") or {}
    if not annotations.get(TECHDOCS_REF):
        return None
    try:
        triple = EntityTriple.of_entity(dict(entity))
    except ValueError:
        return None
    href = f"/docs/{triple.path}/"
    status = service.build_status(triple, with_log=False)
    try:
        page = service.page(triple, "")
    except NotFoundError:
        page = None
    if page is None and status is None:
        try:  # first sight of documented entity: queue its build
            status = service.sync(triple).get("build") or status
        except GreenroomError:
            pass
    badge = _status_badge(status["status"] if status else None)
    head = [f'<div class="docs-tab-head"><p class="meta-line">{badge}']
    if status and status.get("builtAt"):
        head.append(f'<span class="muted">built {_ago(status["builtAt"])}</span>')
    if status and status.get("freshness") and status.get("builtAt"):
        head.append(f'<span class="muted">· {htmllib.escape(status["freshness"])}</span>')
    head.append(f'</p><a class="button primary" href="{href}">Open docs</a></div>')
    parts = ["".join(head)]
    if status and status["status"] == BuildStatus.FAILED:
        parts.append(f'<p class="alert error">The last build failed: '
                     f'{htmllib.escape(status.get("error") or "see the build log")}. '
                     f'<a href="{href}">See the log and rebuild</a>.</p>')
    if page is not None:
        parts.append(f'<div class="docs-body docs-inline">{page.body_html}</div>')
    elif status and status["status"] in (BuildStatus.QUEUED, BuildStatus.RUNNING):
        parts.append('<p class="muted">The docs are being built; they appear here in a few seconds.</p>')
    return "".join(parts)

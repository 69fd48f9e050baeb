"""TechDocs use cases: queue and run builds, serve built sites, answer freshness and page views.

Each method is one unit of work. Builds run outside any transaction: a job is claimed with a lease
in one short transaction, built (clone, MkDocs in the build server, store), then recorded in
another; a worker that dies mid-build leaves a lease that expires and another worker retries.
Docs errors (bad mkdocs.yml, unknown plugin, build error) fail the job at once with the log;
transient errors (clone, storage) are retried with backoff up to ``max_attempts``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from greenroom.core.config import Settings
from greenroom.core.db import reading, transaction
from greenroom.core.errors import InputError, NotFoundError
from greenroom.core.logs import event
from greenroom.techdocs.engine import html, sources
from greenroom.techdocs.engine.build_child import GREENROOM_PAGES_DIR, GREENROOM_SITE_FILE
from greenroom.techdocs.engine.builder import DocsBuilder
from greenroom.techdocs.engine.storage import DocsStorage, safe_relpath
from greenroom.techdocs.model import (
    MANAGED_BY_LOCATION,
    TECHDOCS_REF,
    BuildStatus,
    DocsPage,
    EntityPort,
    EntityTriple,
    Freshness,
    TechDocsOptions,
)
from greenroom.techdocs.store import BuildRow, BuildStore

log = logging.getLogger("greenroom.techdocs")


def _triple(ref: str | EntityTriple) -> EntityTriple:
    if isinstance(ref, EntityTriple):
        return ref
    try:
        return EntityTriple.parse(ref)
    except ValueError as e:
        raise InputError(str(e)) from None


def default_allowed_hosts(settings: Settings) -> tuple[str, ...]:
    """Hosts docs may be cloned from: backend.reading.allow and configured integrations."""
    hosts = [a.host for a in settings.backend.reading.allow]
    hosts += [i.host for i in (*settings.integrations.github, *settings.integrations.gitlab)]
    return tuple(dict.fromkeys(hosts))


class TechDocsService:
    def __init__(self, engine: Engine, settings: Settings, storage: DocsStorage, entities: EntityPort,
                 options: TechDocsOptions | None = None, builder: DocsBuilder | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.storage = storage
        self.entities = entities
        self.options = options or TechDocsOptions(allowed_git_hosts=default_allowed_hosts(settings))
        self.builder = builder or DocsBuilder(timeout_s=self.options.build_timeout_s,
                                              memory_mb=self.options.memory_limit_mb,
                                              use_server=self.options.use_build_server)
        self.store = BuildStore()
        self._last_sync_check: dict[str, float] = {}
        self._build_listeners: list[Callable[[str], None]] = []

    def close(self) -> None:
        self.builder.close()

    def add_build_listener(self, fn: Callable[[str], None]) -> None:
        """Call ``fn(entity_ref)`` after each successful build, once the new site is stored and
        recorded (the search index listens). A listener that raises is logged; the build stands."""
        self._build_listeners.append(fn)

    def _built(self, ref: str) -> None:
        for fn in self._build_listeners:
            try:
                fn(ref)
            except Exception:
                log.exception("techdocs.build_listener_failed", extra={"fields": {"entity": ref}})

    # -- entities ----------------------------------------------------------------------------
    def _entity(self, ref: str | EntityTriple) -> tuple[EntityTriple, dict[str, Any]]:
        triple = _triple(ref)
        entity = self.entities.get_entity(triple.ref)
        if entity is None:
            raise NotFoundError(f"Entity {triple.ref} not found")
        return triple, entity

    @staticmethod
    def _annotations(entity: dict[str, Any]) -> dict[str, str]:
        return dict((entity.get("metadata") or {}).get("annotations") or {})

    # -- builds ------------------------------------------------------------------------------
    def request_build(self, ref: str | EntityTriple, reason: str = "requested") -> dict[str, Any]:
        """Queue a build (no-op while one is queued or running); returns the build status."""
        triple, entity = self._entity(ref)
        if not self._annotations(entity).get(TECHDOCS_REF):
            raise InputError(f"{triple.ref} has no backstage.io/techdocs-ref annotation; add "
                             "`backstage.io/techdocs-ref: dir:.` to its catalog-info.yaml")
        with transaction(self.engine) as conn:
            row, queued = self.store.enqueue(conn, triple.ref, reason, time.time())
        if queued:
            event(log, "techdocs.build.queued", entity=triple.ref, reason=reason)
        return self._status(row)

    def request_builds(self, entities: list[dict[str, Any]], reason: str) -> int:
        """Queue builds for many entities in one transaction (catalog changes arrive in
        thousands). An entity read from a file whose ``dir:`` docs folder has no mkdocs.yml is
        skipped here: its build could only fail, and the Docs page explains what to add."""
        refs = []
        for entity in entities:
            annotations = self._annotations(entity)
            docs_ref = annotations.get(TECHDOCS_REF)
            if not docs_ref:
                continue
            where = annotations.get("backstage.io/managed-by-location", "")
            if docs_ref.startswith("dir:") and where.startswith("file:"):
                folder = os.path.join(os.path.dirname(where[len("file:"):]), docs_ref[len("dir:"):])
                if not any(os.path.isfile(os.path.join(folder, n)) for n in ("mkdocs.yml", "mkdocs.yaml")):
                    continue
            meta = entity.get("metadata") or {}
            refs.append(f"{entity.get('kind')}:{meta.get('namespace') or 'default'}/{meta.get('name')}".lower())
        if not refs:
            return 0
        now = time.time()
        queued = 0
        with transaction(self.engine) as conn:
            for ref in refs:
                queued += self.store.enqueue(conn, ref, reason, now)[1]
        event(log, "techdocs.builds.queued", entities=len(refs), queued=queued, reason=reason)
        return queued

    def claim_and_run_next(self, worker_id: str) -> BuildRow | None:
        """Claim the next due build and run it to the end; None when nothing is due."""
        now = time.time()
        with transaction(self.engine) as conn:
            self.store.fail_exhausted(conn, now, self.options.max_attempts)
            job = self.store.claim(conn, worker_id, now, self.options.lease_seconds,
                                   self.options.max_attempts)
        if job is None:
            return None
        event(log, "techdocs.build.started", entity=job.entity_ref, attempt=job.attempts, worker=worker_id)
        self._run(job, worker_id)
        with reading(self.engine) as conn:
            return self.store.get(conn, job.entity_ref)

    def _run(self, job: BuildRow, worker_id: str) -> None:
        source: sources.DocsSource | None = None
        try:
            triple, entity = self._entity(job.entity_ref)
            ann = self._annotations(entity)
            source = sources.resolve(ann.get(MANAGED_BY_LOCATION), ann.get(TECHDOCS_REF),
                                     self.options.allowed_git_hosts)
            sha = sources.commit_sha(source.repo_root)
            version = sha or sources.source_version(source)
            fresh = sources.freshness(source)
            with tempfile.TemporaryDirectory(prefix="greenroom-site-") as tmp:
                site = Path(tmp) / "site"
                result = self.builder.build(source.docs_root, site, etag=version)
                if result.ok:
                    self.storage.put_site(triple, site)
            self._finish(job, worker_id, ok=result.ok, log_text=result.log, error=result.error,
                         duration=result.duration_s,
                         broken=[b.__dict__ for b in result.broken_links], sha=version,
                         fresh=fresh, site_name=result.site_name)
        except NotFoundError as e:
            self._finish(job, worker_id, ok=False, log_text=f"ERROR   - {e.message}\n", error=e.message)
        except sources.SourceError as e:
            if e.transient:
                self._retry(job, worker_id, e.message)
            else:
                self._finish(job, worker_id, ok=False, log_text=f"ERROR   - {e.message}\n", error=e.message)
        except Exception as e:
            log.exception("techdocs.build.crashed", extra={"fields": {"entity": job.entity_ref}})
            self._retry(job, worker_id, f"{type(e).__name__}: {e}")
        finally:
            if source is not None and source.cleanup_dir is not None:
                shutil.rmtree(source.cleanup_dir, ignore_errors=True)

    def _finish(self, job: BuildRow, worker_id: str, *, ok: bool, log_text: str, error: str | None,
                duration: float = 0.0, broken: list[dict[str, str]] | None = None,
                sha: str | None = None, fresh: Freshness | None = None, site_name: str | None = None) -> None:
        with transaction(self.engine) as conn:
            kept = self.store.finish(
                conn, job.id, worker_id, ok=ok, now=time.time(), log=log_text, error=error,
                duration_s=round(duration, 3), broken_links=broken or [], commit_sha=sha,
                docs_changed_at=fresh.docs_changed_at if fresh else None,
                code_changed_at=fresh.code_changed_at if fresh else None, site_name=site_name)
        event(log, "techdocs.build.finished", entity=job.entity_ref, ok=ok, lease_kept=kept,
              seconds=round(duration, 3), error=error)
        if ok and kept:
            self._built(job.entity_ref)

    def _retry(self, job: BuildRow, worker_id: str, error: str) -> None:
        now = time.time()
        with transaction(self.engine) as conn:
            self.store.retry_later(conn, job.id, worker_id, now=now, at=now + 5 * 2 ** job.attempts,
                                   error=error, log=f"ERROR   - {error}\n",
                                   max_attempts=self.options.max_attempts)
        event(log, "techdocs.build.retry", logging.WARNING, entity=job.entity_ref, error=error)

    # -- status ------------------------------------------------------------------------------
    @staticmethod
    def _status(row: BuildRow) -> dict[str, Any]:
        fresh = Freshness(int(row.docs_changed_at) if row.docs_changed_at is not None else None,
                          int(row.code_changed_at) if row.code_changed_at is not None else None)
        return {
            "entityRef": row.entity_ref, "status": row.status.value, "reason": row.reason,
            "attempts": row.attempts, "requestedAt": row.requested_at, "startedAt": row.started_at,
            "finishedAt": row.finished_at, "durationSeconds": row.duration_s, "error": row.error,
            "commitSha": row.commit_sha, "builtAt": row.built_at, "builtCommitSha": row.built_commit_sha,
            "siteName": row.site_name, "brokenLinks": row.broken_links,
            "docsChangedAt": row.docs_changed_at, "codeChangedAt": row.code_changed_at,
            "freshnessLagDays": fresh.lag_days, "freshness": fresh.describe(),
        }

    def build_status(self, ref: str | EntityTriple, *, with_log: bool = True) -> dict[str, Any] | None:
        """The entity's last build (status, error, broken links, freshness, log), None if never."""
        triple = _triple(ref)
        with reading(self.engine) as conn:
            row = self.store.get(conn, triple.ref)
        if row is None:
            return None
        out = self._status(row)
        if with_log:
            out["log"] = row.log
        return out

    def list_documented(self) -> list[dict[str, Any]]:
        """Every entity with a build record: last build, broken links and freshness (no logs)."""
        with reading(self.engine) as conn:
            return [self._status(r) for r in self.store.list_all(conn)]

    # -- Backstage API -----------------------------------------------------------------------
    def static_file(self, triple: EntityTriple, path: str) -> tuple[bytes, str]:
        self._entity(triple)
        return self.storage.get_file(triple, path)

    def techdocs_metadata(self, ref: str | EntityTriple) -> dict[str, Any]:
        triple, _ = self._entity(ref)
        try:
            raw, _ = self.storage.get_file(triple, "techdocs_metadata.json")
            data = json.loads(raw)
        except (NotFoundError, ValueError):
            raise NotFoundError(f"Unable to get metadata for '{triple.ref}'") from None
        return data if isinstance(data, dict) else {}

    def entity_metadata(self, ref: str | EntityTriple) -> dict[str, Any]:
        """The entity plus ``locationMetadata`` ({type, target}) of its docs, as Backstage sends."""
        triple, entity = self._entity(ref)
        ann = self._annotations(entity)
        docs_ref = ann.get(TECHDOCS_REF)
        if not docs_ref:
            raise NotFoundError(f"Unable to get metadata for '{triple.ref}'")
        kind, _, target = docs_ref.partition(":")
        location = {"type": kind, "target": target}
        managed = ann.get(MANAGED_BY_LOCATION, "")
        if kind == "dir" and managed.startswith("file:"):
            location = {"type": "dir", "target": str((Path(managed[5:]).parent / target).resolve())}
        return {**entity, "locationMetadata": location}

    def sync(self, ref: str | EntityTriple) -> dict[str, Any]:
        """Queue a build when the docs are missing or their source changed (like Backstage's
        /sync). Returns ``{"queued": bool, "build": status | None}``; checks at most once per
        ``sync_min_interval_s`` per entity unless no site exists."""
        triple, entity = self._entity(ref)
        ann = self._annotations(entity)
        if not ann.get(TECHDOCS_REF):
            raise NotFoundError(f"{triple.ref} has no backstage.io/techdocs-ref annotation")
        current = self.build_status(triple, with_log=False)
        if current and current["status"] in (BuildStatus.QUEUED, BuildStatus.RUNNING):
            return {"queued": True, "build": current}
        if not self.storage.has_site(triple):
            if current and current["status"] == BuildStatus.FAILED and self._recent(triple.ref):
                return {"queued": False, "build": current}
            self._last_sync_check[triple.ref] = time.time()
            return {"queued": True, "build": self.request_build(triple, "sync: no docs built yet")}
        if self._recent(triple.ref):
            return {"queued": False, "build": current}
        self._last_sync_check[triple.ref] = time.time()
        version = self._current_version(ann)
        built = current.get("builtCommitSha") if current else None
        if version is not None and version != built:
            return {"queued": True, "build": self.request_build(triple, "sync: source changed")}
        return {"queued": False, "build": current}

    def _recent(self, ref: str) -> bool:
        return time.time() - self._last_sync_check.get(ref, 0.0) < self.options.sync_min_interval_s

    def _current_version(self, ann: dict[str, str]) -> str | None:
        docs_ref = ann.get(TECHDOCS_REF, "")
        if docs_ref.startswith("url:"):
            return sources.remote_version(docs_ref, self.options.allowed_git_hosts)
        try:
            src = sources.resolve(ann.get(MANAGED_BY_LOCATION), docs_ref, ())
        except sources.SourceError:
            return None  # url: locations are checked when building
        return sources.source_version(src)

    # -- portal pages ------------------------------------------------------------------------
    def page(self, ref: str | EntityTriple, path: str = "") -> DocsPage:
        """A sanitized page body with the site nav and its TOC, for the portal's docs view."""
        triple, _ = self._entity(ref)
        rel = safe_relpath(path)
        try:
            site = json.loads(self.storage.get_file(triple, GREENROOM_SITE_FILE)[0])
        except NotFoundError:
            raise NotFoundError(f"No docs built for {triple.ref} yet; start a build") from None
        pages: dict[str, Any] = site.get("pages", {})
        dest = next((c for c in (rel, f"{rel}/index.html".lstrip("/"), f"{rel}.html")
                     if c in pages and c.endswith(".html")), None)
        if dest is None:
            raise NotFoundError(f"No page {rel or '/'} in the docs of {triple.ref}")
        info = pages[dest]
        body, _ = self.storage.get_file(triple, f"{GREENROOM_PAGES_DIR}/{dest}")
        status = self.build_status(triple, with_log=False) or {}
        return DocsPage(
            entity_ref=triple.ref, path=info["url"], title=info.get("title", ""),
            site_name=site.get("site_name", ""),
            body_html=html.sanitize(body.decode("utf-8", "replace"), html.UrlRewriter(triple, info["url"])),
            nav=html.portal_nav(site.get("nav", []), triple, info["url"]),
            toc=html.plain_toc(info.get("toc", [])), build_status=status.get("status"),
            built_at=str(status.get("builtAt")) if status.get("builtAt") else None,
            freshness=status.get("freshness"),
        )

    # -- web shell ---------------------------------------------------------------------------
    def entity_tab(self, tab: str, entity: dict[str, Any], principal: Any) -> str | None:
        """The entity page's Docs tab (``web.model.TabProvider``): status, link, index page."""
        from greenroom.techdocs.service import portal

        return portal.entity_tab(self, tab, entity)

"""TechDocs tables and every query on them. Never commits: the service owns transactions.

One row per entity in ``techdocs_builds`` (unique ``entity_ref``): its current or last build job
and the facts of the last build. Because the row is per entity there is at most one active build
per entity; asking again while one is queued or running changes nothing.

Claiming is compare-and-set on the row: a worker picks a candidate, then
``UPDATE ... WHERE id = :id AND <still claimable>``; only the update that matched a row wins, on
SQLite (writers serialized) and on PostgreSQL (the second update re-checks the condition after the
first commits and matches nothing). A row is claimable when queued and due, or running with an
expired lease (its worker died). Times are epoch seconds (float).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    insert,
    or_,
    select,
    update,
)

from greenroom.core.db import metadata
from greenroom.techdocs.model import BuildStatus

builds = Table(
    "techdocs_builds", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_ref", String(512), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("reason", String(200), nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("requested_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("log", Text, nullable=False, server_default=""),
    Column("error", Text, nullable=True),
    Column("commit_sha", String(64), nullable=True),
    Column("docs_changed_at", Float, nullable=True),
    Column("code_changed_at", Float, nullable=True),
    Column("broken_links", Text, nullable=False, server_default="[]"),
    Column("site_name", String(500), nullable=True),
    Column("built_at", Float, nullable=True),
    Column("built_commit_sha", String(64), nullable=True),
)
Index("ix_techdocs_builds_status", builds.c.status, builds.c.next_attempt_at)


@dataclass(frozen=True)
class BuildRow:
    id: int
    entity_ref: str
    status: BuildStatus
    reason: str
    attempts: int
    requested_at: float
    lease_owner: str | None
    lease_until: float | None
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    log: str
    error: str | None
    commit_sha: str | None
    docs_changed_at: float | None
    code_changed_at: float | None
    broken_links: list[dict[str, str]]
    site_name: str | None
    built_at: float | None
    built_commit_sha: str | None


def _row(r: Any) -> BuildRow:
    m = r._mapping
    return BuildRow(
        id=m["id"], entity_ref=m["entity_ref"], status=BuildStatus(m["status"]), reason=m["reason"],
        attempts=m["attempts"], requested_at=m["requested_at"], lease_owner=m["lease_owner"],
        lease_until=m["lease_until"], started_at=m["started_at"], finished_at=m["finished_at"],
        duration_s=m["duration_s"], log=m["log"], error=m["error"], commit_sha=m["commit_sha"],
        docs_changed_at=m["docs_changed_at"], code_changed_at=m["code_changed_at"],
        broken_links=json.loads(m["broken_links"] or "[]"), site_name=m["site_name"],
        built_at=m["built_at"], built_commit_sha=m["built_commit_sha"],
    )


class BuildStore:
    """Queries on ``techdocs_builds``; every method takes the caller's connection."""

    def get(self, conn: Connection, entity_ref: str) -> BuildRow | None:
        r = conn.execute(select(builds).where(builds.c.entity_ref == entity_ref)).first()
        return _row(r) if r else None

    def list_all(self, conn: Connection) -> list[BuildRow]:
        return [_row(r) for r in conn.execute(select(builds).order_by(builds.c.entity_ref))]

    def enqueue(self, conn: Connection, entity_ref: str, reason: str, now: float) -> tuple[BuildRow, bool]:
        """Queue a build unless one is queued or running; returns (row, newly_queued)."""
        existing = self.get(conn, entity_ref)
        if existing is None:
            conn.execute(insert(builds).values(
                entity_ref=entity_ref, status=BuildStatus.QUEUED, reason=reason[:200], attempts=0,
                requested_at=now, next_attempt_at=now, log="", broken_links="[]"))
        elif existing.status in (BuildStatus.QUEUED, BuildStatus.RUNNING):
            return existing, False
        else:
            conn.execute(update(builds).where(builds.c.id == existing.id).values(
                status=BuildStatus.QUEUED, reason=reason[:200], attempts=0, requested_at=now,
                next_attempt_at=now, lease_owner=None, lease_until=None, error=None))
        row = self.get(conn, entity_ref)
        assert row is not None
        return row, True

    def _claimable(self, now: float, max_attempts: int) -> Any:
        return and_(
            builds.c.attempts < max_attempts,
            or_(and_(builds.c.status == BuildStatus.QUEUED, builds.c.next_attempt_at <= now),
                and_(builds.c.status == BuildStatus.RUNNING, builds.c.lease_until < now)),
        )

    def claim(self, conn: Connection, owner: str, now: float, lease_s: float,
              max_attempts: int) -> BuildRow | None:
        """Take the oldest claimable job with a lease until ``now + lease_s``; None if none."""
        cond = self._claimable(now, max_attempts)
        candidates = conn.execute(
            select(builds.c.id).where(cond).order_by(builds.c.requested_at, builds.c.id).limit(5)
        ).scalars().all()
        for job_id in candidates:
            won = conn.execute(update(builds).where(builds.c.id == job_id, cond).values(
                status=BuildStatus.RUNNING, lease_owner=owner, lease_until=now + lease_s,
                attempts=builds.c.attempts + 1, started_at=now)).rowcount
            if won == 1:
                r = conn.execute(select(builds).where(builds.c.id == job_id)).first()
                return _row(r)
        return None

    def fail_exhausted(self, conn: Connection, now: float, max_attempts: int) -> int:
        """Jobs whose worker died ``max_attempts`` times become failed, with the reason."""
        return conn.execute(update(builds).where(
            builds.c.status == BuildStatus.RUNNING, builds.c.lease_until < now,
            builds.c.attempts >= max_attempts,
        ).values(status=BuildStatus.FAILED, finished_at=now, lease_owner=None, lease_until=None,
                 error=f"The build was abandoned {max_attempts} times (worker stopped or timed "
                       "out before finishing); see the log and retry")).rowcount

    def extend(self, conn: Connection, job_id: int, owner: str, until: float) -> bool:
        return conn.execute(update(builds).where(
            builds.c.id == job_id, builds.c.lease_owner == owner, builds.c.status == BuildStatus.RUNNING,
        ).values(lease_until=until)).rowcount == 1

    def finish(self, conn: Connection, job_id: int, owner: str, *, ok: bool, now: float, log: str,
               error: str | None, duration_s: float, broken_links: list[dict[str, str]],
               commit_sha: str | None, docs_changed_at: float | None, code_changed_at: float | None,
               site_name: str | None) -> bool:
        """Record a finished build; False if the lease was lost to another worker meanwhile."""
        values: dict[str, Any] = {
            "status": BuildStatus.SUCCEEDED if ok else BuildStatus.FAILED, "finished_at": now,
            "duration_s": duration_s, "log": log, "error": error, "lease_owner": None,
            "lease_until": None, "broken_links": json.dumps(broken_links), "commit_sha": commit_sha,
            "docs_changed_at": docs_changed_at, "code_changed_at": code_changed_at}
        if ok:
            values.update(built_at=now, built_commit_sha=commit_sha, site_name=site_name)
        return conn.execute(update(builds).where(
            builds.c.id == job_id, builds.c.lease_owner == owner, builds.c.status == BuildStatus.RUNNING,
        ).values(**values)).rowcount == 1

    def retry_later(self, conn: Connection, job_id: int, owner: str, *, now: float, at: float,
                    error: str, log: str, max_attempts: int) -> bool:
        """Put a job that failed for a transient reason back in the queue (or fail it when spent)."""
        row = conn.execute(select(builds.c.attempts).where(builds.c.id == job_id)).scalar_one()
        spent = row >= max_attempts
        return conn.execute(update(builds).where(
            builds.c.id == job_id, builds.c.lease_owner == owner, builds.c.status == BuildStatus.RUNNING,
        ).values(status=BuildStatus.FAILED if spent else BuildStatus.QUEUED, next_attempt_at=at,
                 lease_owner=None, lease_until=None, error=error, log=log,
                 finished_at=now if spent else None)).rowcount == 1

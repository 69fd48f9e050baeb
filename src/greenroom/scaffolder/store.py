"""Scaffolder tables and every query on them. Functions take a Connection and never commit.

Model. ``scaffolder_tasks`` holds one row per task: the task spec (template steps, output, the
user's values *without* secret fields, template info), its status (``open`` → ``processing`` →
``completed``/``failed``/``cancelled``; ``retry`` puts a finished task back to ``open``), and a
lease (``lease_owner``/``lease_until``). ``scaffolder_task_events`` is the append-only log the
task page streams (``log``, ``completion``, ``cancelled``, ``recovered``); its autoincrement id is
the cursor clients pass as ``after``.

Invariants.
* A task is run by at most one worker at a time: ``claim_next`` moves ``open`` to ``processing``
  with a compare-and-set ``UPDATE … WHERE status = 'open'``; of two replicas racing for a row
  exactly one sees ``rowcount == 1``. This works the same on SQLite and PostgreSQL.
* An ``open`` task may be *pinned* to the replica holding its secrets in memory
  (``lease_owner`` set while open): only that replica claims it until ``lease_until`` passes.
* Only the lease holder finishes a task (``finish`` checks ``lease_owner``); a worker that lost
  its lease (another replica recovered the task) cannot overwrite the recovered result.
* Status change and its ``completion`` event are written in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    and_,
    false,
    func,
    insert,
    or_,
    select,
    update,
)

from greenroom.core.db import metadata

TERMINAL = ("completed", "failed", "cancelled")
STATUSES = ("open", "processing", *TERMINAL)

tasks = Table(
    "scaffolder_tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_by", String(512), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("last_heartbeat_at", Float, nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("output", JSON, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Index("ix_scaffolder_tasks_status_created_at", "status", "created_at"),
    Index("ix_scaffolder_tasks_created_by", "created_by"),
)

task_events = Table(
    "scaffolder_task_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(36), ForeignKey("scaffolder_tasks.id", ondelete="CASCADE"), nullable=False),
    Column("event_type", String(16), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_scaffolder_task_events_task_id_id", "task_id", "id"),
)


@dataclass(frozen=True)
class TaskRow:
    id: str
    spec: dict[str, Any]
    status: str
    created_by: str | None
    created_at: float
    last_heartbeat_at: float | None
    lease_owner: str | None
    lease_until: float | None
    attempts: int
    output: dict[str, Any] | None
    cancel_requested: bool


@dataclass(frozen=True)
class EventRow:
    id: int
    task_id: str
    type: str
    body: dict[str, Any]
    created_at: float


def _task(row: Any) -> TaskRow:
    m = row._mapping
    return TaskRow(id=m["id"], spec=m["spec"], status=m["status"], created_by=m["created_by"],
                   created_at=m["created_at"], last_heartbeat_at=m["last_heartbeat_at"],
                   lease_owner=m["lease_owner"], lease_until=m["lease_until"], attempts=m["attempts"],
                   output=m["output"], cancel_requested=bool(m["cancel_requested"]))


def _event(row: Any) -> EventRow:
    m = row._mapping
    return EventRow(id=int(m["id"]), task_id=m["task_id"], type=m["event_type"], body=m["body"],
                    created_at=m["created_at"])


# -- tasks ---------------------------------------------------------------------------------------
def create_task(conn: Connection, task_id: str, spec: dict[str, Any], created_by: str | None, now: float,
                *, pinned_to: str | None = None, pin_until: float | None = None) -> None:
    conn.execute(insert(tasks).values(
        id=task_id, spec=spec, status="open", created_by=created_by, created_at=now,
        lease_owner=pinned_to, lease_until=pin_until if pinned_to else None, attempts=0,
        cancel_requested=False,
    ))


def get_task(conn: Connection, task_id: str) -> TaskRow | None:
    row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
    return _task(row) if row else None


def claim_next(conn: Connection, owner: str, now: float, lease_seconds: float) -> TaskRow | None:
    """Oldest ``open`` task this owner may run, moved to ``processing`` under a lease; or None."""
    may_run = or_(tasks.c.lease_owner.is_(None), tasks.c.lease_owner == owner)
    candidates = conn.execute(
        select(tasks.c.id).where(tasks.c.status == "open", may_run)
        .order_by(tasks.c.created_at, tasks.c.id).limit(5)
    ).scalars().all()
    for task_id in candidates:
        won = conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.status == "open", may_run)
            .values(status="processing", lease_owner=owner, lease_until=now + lease_seconds,
                    last_heartbeat_at=now, attempts=tasks.c.attempts + 1)
        ).rowcount
        if won == 1:
            return get_task(conn, task_id)
    return None


def heartbeat(conn: Connection, task_id: str, owner: str, now: float, lease_seconds: float) -> TaskRow | None:
    """Extend the lease; None if this owner no longer holds it (the task was recovered)."""
    count = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == "processing", tasks.c.lease_owner == owner)
        .values(last_heartbeat_at=now, lease_until=now + lease_seconds)
    ).rowcount
    return get_task(conn, task_id) if count == 1 else None


def finish(conn: Connection, task_id: str, owner: str, status: str, body: dict[str, Any], now: float,
           output: dict[str, Any] | None = None) -> bool:
    """Move a processing task held by ``owner`` to a terminal status and append its completion
    event. False (nothing written) if the lease was lost."""
    assert status in TERMINAL
    count = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == "processing", tasks.c.lease_owner == owner)
        .values(status=status, output=output, lease_owner=None, lease_until=None, last_heartbeat_at=now)
    ).rowcount
    if count != 1:
        return False
    append_events(conn, task_id, [("completion", body)], now)
    return True


def cancel_open(conn: Connection, task_id: str, body: dict[str, Any], now: float) -> bool:
    """Cancel a task nobody has started: status and completion event at once."""
    count = conn.execute(
        update(tasks).where(tasks.c.id == task_id, tasks.c.status == "open")
        .values(status="cancelled", cancel_requested=True, lease_owner=None, lease_until=None)
    ).rowcount
    if count == 1:
        append_events(conn, task_id, [("completion", body)], now)
    return count == 1


def request_cancel(conn: Connection, task_id: str) -> bool:
    """Flag a processing task; its worker stops at the next step boundary."""
    return conn.execute(
        update(tasks).where(tasks.c.id == task_id, tasks.c.status == "processing")
        .values(cancel_requested=True)
    ).rowcount == 1


def reopen(conn: Connection, task_id: str, now: float, *, pinned_to: str | None,
           pin_until: float | None) -> bool:
    """``retry``: a finished task back to ``open``; its completion/cancelled events are removed and
    a ``recovered`` event marks where the new run starts (as Backstage's retryTask)."""
    count = conn.execute(
        update(tasks).where(tasks.c.id == task_id, tasks.c.status.in_(TERMINAL))
        .values(status="open", cancel_requested=False, output=None, last_heartbeat_at=now,
                lease_owner=pinned_to, lease_until=pin_until if pinned_to else None)
    ).rowcount
    if count != 1:
        return False
    conn.execute(task_events.delete().where(task_events.c.task_id == task_id,
                                            task_events.c.event_type.in_(("completion", "cancelled"))))
    append_events(conn, task_id, [("recovered", {"message": "The task was retried",
                                                 "recoverStrategy": "none"})], now)
    return True


def expired(conn: Connection, now: float) -> list[TaskRow]:
    """Processing tasks whose lease ran out, and open tasks pinned to a replica that is gone."""
    rows = conn.execute(select(tasks).where(
        tasks.c.lease_owner.is_not(None), tasks.c.lease_until < now,
        tasks.c.status.in_(("processing", "open")),
    ).order_by(tasks.c.created_at)).all()
    return [_task(r) for r in rows]


def fail_expired(conn: Connection, task: TaskRow, now: float, events: Sequence[tuple[str, dict[str, Any]]],
                 completion: dict[str, Any]) -> bool:
    """Mark one expired task failed (compare-and-set on the lease seen), with its events."""
    count = conn.execute(
        update(tasks).where(tasks.c.id == task.id, tasks.c.status == task.status,
                            tasks.c.lease_owner == task.lease_owner, tasks.c.lease_until < now)
        .values(status="failed", lease_owner=None, lease_until=None)
    ).rowcount
    if count != 1:
        return False
    append_events(conn, task.id, [*events, ("completion", completion)], now)
    return True


def list_tasks(conn: Connection, *, created_by: Sequence[str] = (), status: Sequence[str] = (),
               limit: int | None = None, offset: int = 0, order: Sequence[tuple[str, bool]] = ()
               ) -> tuple[list[TaskRow], int]:
    """A page of tasks (newest first unless ``order`` names columns) and the total count."""
    where = []
    if created_by:
        where.append(tasks.c.created_by.in_(list(created_by)))
    if status:
        where.append(tasks.c.status.in_(list(status)))
    clause = and_(*where) if where else None
    count_q = select(func.count()).select_from(tasks)
    query = select(tasks)
    if clause is not None:
        count_q, query = count_q.where(clause), query.where(clause)
    columns = [(tasks.c[name].desc() if desc else tasks.c[name].asc()) for name, desc in order]
    query = query.order_by(*(columns or [tasks.c.created_at.desc()]), tasks.c.id)
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query.offset(offset)).all()
    return [_task(r) for r in rows], int(conn.execute(count_q).scalar_one())


# -- events --------------------------------------------------------------------------------------
def append_events(conn: Connection, task_id: str, events: Sequence[tuple[str, dict[str, Any]]],
                  now: float) -> None:
    if events:
        conn.execute(insert(task_events), [
            {"task_id": task_id, "event_type": kind, "body": body, "created_at": now} for kind, body in events
        ])


def list_events(conn: Connection, task_id: str, after: int | None = None) -> list[EventRow]:
    """Events in id order; with ``after``, those after it plus (always) the completion event, as
    Backstage does so a client that missed nothing still learns the task ended."""
    query = select(task_events).where(task_events.c.task_id == task_id)
    if after is not None:
        query = query.where(or_(task_events.c.id > after, task_events.c.event_type == "completion"))
    return [_event(r) for r in conn.execute(query.order_by(task_events.c.id)).all()]


def last_step_id(conn: Connection, task_id: str) -> str | None:
    """The step the newest step-tagged event names (what ``cancel`` reports)."""
    for event in reversed(list_events(conn, task_id)):
        if event.body.get("stepId"):
            return str(event.body["stepId"])
    return None

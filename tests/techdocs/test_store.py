"""Build jobs on a SQLite file and on PostgreSQL: one active build per entity, leased claims."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine

from greenroom.core.db import reading, transaction
from greenroom.techdocs.model import BuildStatus
from greenroom.techdocs.store import BuildRow, BuildStore

store = BuildStore()


def test_one_active_build_per_entity(engine: Engine) -> None:
    with transaction(engine) as conn:
        first, queued = store.enqueue(conn, "component:default/a", "first", 100.0)
        again, queued_again = store.enqueue(conn, "component:default/a", "second", 101.0)
    assert queued and not queued_again
    assert again.id == first.id and again.reason == "first"
    with reading(engine) as conn:
        assert len(store.list_all(conn)) == 1


def test_two_claimers_never_get_the_same_job(engine: Engine) -> None:
    with transaction(engine) as conn:
        for i in range(6):
            store.enqueue(conn, f"component:default/c{i}", "t", 100.0 + i)
    got: dict[str, list[BuildRow]] = {"w1": [], "w2": []}
    barrier = threading.Barrier(2)

    def claimer(name: str) -> None:
        barrier.wait()
        while True:
            with transaction(engine) as conn:
                job = store.claim(conn, name, 200.0, 60.0, 3)
            if job is None:
                return
            got[name].append(job)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [j.id for jobs in got.values() for j in jobs]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert all(j.status == BuildStatus.RUNNING and j.attempts == 1 for jobs in got.values() for j in jobs)


def test_expired_lease_is_reclaimed_and_stale_worker_cannot_finish(engine: Engine) -> None:
    with transaction(engine) as conn:
        store.enqueue(conn, "component:default/a", "t", 100.0)
        job = store.claim(conn, "dead-worker", 100.0, 10.0, 3)
        assert job is not None
        assert store.claim(conn, "w2", 105.0, 10.0, 3) is None  # lease still valid
        again = store.claim(conn, "w2", 111.0, 10.0, 3)  # lease expired at 110
    assert again is not None and again.id == job.id and again.attempts == 2
    with transaction(engine) as conn:
        kwargs: dict[str, Any] = {"now": 112.0, "log": "", "error": None, "duration_s": 1.0,
                                  "broken_links": [], "commit_sha": "x", "docs_changed_at": None,
                                  "code_changed_at": None, "site_name": "s"}
        assert not store.finish(conn, job.id, "dead-worker", ok=True, **kwargs)
        assert store.finish(conn, job.id, "w2", ok=True, **kwargs)
        row = store.get(conn, "component:default/a")
    assert row is not None and row.status == BuildStatus.SUCCEEDED and row.built_at == 112.0


def test_job_abandoned_too_often_fails_with_reason(engine: Engine) -> None:
    with transaction(engine) as conn:
        store.enqueue(conn, "component:default/a", "t", 0.0)
        for attempt in range(2):
            assert store.claim(conn, f"w{attempt}", 100.0 * (attempt + 1), 10.0, 2) is not None
        assert store.claim(conn, "w9", 1000.0, 10.0, 2) is None
        assert store.fail_exhausted(conn, 1000.0, 2) == 1
        row = store.get(conn, "component:default/a")
    assert row is not None and row.status == BuildStatus.FAILED
    assert "abandoned 2 times" in (row.error or "")


def test_transient_failure_is_retried_later(engine: Engine) -> None:
    with transaction(engine) as conn:
        store.enqueue(conn, "component:default/a", "t", 0.0)
        job = store.claim(conn, "w", 10.0, 60.0, 3)
        assert job is not None
        store.retry_later(conn, job.id, "w", now=11.0, at=50.0, error="clone failed", log="", max_attempts=3)
        assert store.claim(conn, "w", 20.0, 60.0, 3) is None  # not due yet
        assert store.claim(conn, "w", 50.0, 60.0, 3) is not None

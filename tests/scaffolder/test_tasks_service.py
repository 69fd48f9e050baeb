"""Tasks end to end on SQLite and PostgreSQL: run, events, failure, cancel, recovery, retry, leases."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from greenroom.auth.model import Principal
from greenroom.scaffolder.model import ParameterValidationError
from greenroom.scaffolder.worker import ScaffolderWorker
from tests.scaffolder.conftest import SECRET_PASSWORD, SECRET_TOKEN, Stack, values, wait_for

ALICE = Principal("user:default/alice", kind="user")
REF = "template:default/svc"


def messages(events: list[dict[str, Any]]) -> list[str]:
    return [e["body"].get("message", "") for e in events]


def test_task_runs_streams_events_in_order_and_stores_no_secret(stack: Stack) -> None:
    service = stack.service

    async def scenario() -> tuple[str, list[dict[str, Any]]]:
        task_id = await service.create_task(REF, values(), {"apiToken": SECRET_TOKEN}, ALICE)
        assert (await service.get_task(task_id))["status"] == "open"
        assert await ScaffolderWorker(service).run_once() == task_id
        return task_id, await service.events(task_id)

    task_id, events = asyncio.run(scenario())
    task = asyncio.run(service.get_task(task_id))
    assert task["status"] == "completed" and task["createdBy"] == "user:default/alice"
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert events[0]["body"]["message"] == "Starting up task with 5 steps"
    started = [e["body"]["stepId"] for e in events if e["body"].get("status") == "processing"]
    assert started == ["fetch", "wait", "log", "boom", "publish"]
    assert [e["type"] for e in events][-1] == "completion" and [e["type"] for e in events].count("completion") == 1
    links = events[-1]["body"]["output"]["links"]
    assert links == [{"title": "Repository", "url": "http://portal.test/forge/acme/billing"}]
    assert stack.forge.read_file("acme", "billing", "main", "README.md").decode().startswith("# billing")
    # the secret-bearing log line is redacted; neither secret reaches a table
    assert "***" in messages(events)
    dump = stack.dump()
    assert SECRET_TOKEN not in dump and SECRET_PASSWORD not in dump
    assert "dbPassword" not in task["spec"]["parameters"]
    assert not service.workspace_for(task_id).exists()
    listed = asyncio.run(service.list_tasks(created_by=["user:default/alice"], status=["completed"]))
    assert listed["totalTasks"] == 1 and listed["tasks"][0]["id"] == task_id
    assert asyncio.run(service.list_tasks(created_by=["user:default/bob"]))["totalTasks"] == 0


def test_parameter_errors_name_the_fields(stack: Stack) -> None:
    with pytest.raises(ParameterValidationError) as info:
        asyncio.run(stack.service.create_task(REF, {"name": "Bad Name!"}, None, ALICE))
    text = " ".join(f"{e.property} {e.message}" for e in info.value.errors)
    assert "'owner' is a required property" in text and "instance.name" in text
    assert asyncio.run(stack.service.list_tasks())["totalTasks"] == 0


def test_failing_step_fails_the_task_with_the_step_error(stack: Stack) -> None:
    service = stack.service

    async def scenario() -> str:
        task_id = await service.create_task(REF, values(fail=True), None, ALICE)
        await ScaffolderWorker(service).run_once()
        return task_id

    task_id = asyncio.run(scenario())
    events = asyncio.run(service.events(task_id))
    assert asyncio.run(service.get_task(task_id))["status"] == "failed"
    failed = [e for e in events if e["body"].get("status") == "failed"]
    assert [e["body"]["stepId"] for e in failed] == ["boom"]
    error = events[-1]["body"]["error"]["message"]
    assert "step boom" in error and "missing.txt" in error
    assert not any(e["body"].get("stepId") == "publish" for e in events)
    assert not stack.forge.exists("acme", "billing")


def test_cancel_stops_the_run_at_the_next_step_boundary(stack: Stack) -> None:
    service = stack.service

    async def scenario() -> str:
        task_id = await service.create_task(REF, values(wait=10), None, ALICE)
        run = asyncio.create_task(ScaffolderWorker(service).run_once())

        async def waiting() -> bool:
            return any(e["body"].get("stepId") == "wait" for e in await service.events(task_id))

        await wait_for(waiting)
        started = time.monotonic()
        assert await service.cancel(task_id, ALICE) == {"status": "cancelled"}
        await run
        assert time.monotonic() - started < 5  # did not sit out the 10 s wait
        return task_id

    task_id = asyncio.run(scenario())
    events = asyncio.run(service.events(task_id))
    assert asyncio.run(service.get_task(task_id))["status"] == "cancelled"
    assert "cancelled" in [e["type"] for e in events]
    assert events[-1]["type"] == "completion" and "cancelled" in events[-1]["body"]["message"]
    assert not any(e["body"].get("stepId") in ("log", "publish") for e in events)


def test_cancelling_an_open_task_finishes_it_at_once(stack: Stack) -> None:
    service = stack.service
    task_id = asyncio.run(service.create_task(REF, values(), None, ALICE))
    asyncio.run(service.cancel(task_id, ALICE))
    assert asyncio.run(service.get_task(task_id))["status"] == "cancelled"
    assert asyncio.run(ScaffolderWorker(service).run_once()) is None


def test_expired_lease_is_recovered_as_failed_and_retry_runs_it(stack: Stack) -> None:
    dying = stack.replica(lease_seconds=0.3)
    survivor = stack.service
    task_id = asyncio.run(dying.create_task(REF, values(), {"apiToken": SECRET_TOKEN}, ALICE))
    claimed = dying.claim()  # the replica claims the task, then "dies": no heartbeat, no run
    assert claimed is not None and claimed.secrets.secrets == {"apiToken": SECRET_TOKEN}
    assert survivor.claim() is None  # processing under a live lease
    time.sleep(0.4)
    assert survivor.recover_expired() == [task_id]
    assert survivor.recover_expired() == []
    events = asyncio.run(survivor.events(task_id))
    assert asyncio.run(survivor.get_task(task_id))["status"] == "failed"
    assert [e["type"] for e in events][-2:] == ["recovered", "completion"]
    assert "retry" in events[-1]["body"]["error"]["message"]

    # the secrets died with the replica: retry gives them again (password field by its name)
    retried = asyncio.run(survivor.retry(task_id, {"apiToken": SECRET_TOKEN, "dbPassword": SECRET_PASSWORD},
                                         ALICE))
    assert retried == task_id
    assert asyncio.run(ScaffolderWorker(survivor).run_once()) == task_id
    events = asyncio.run(survivor.events(task_id))
    assert asyncio.run(survivor.get_task(task_id))["status"] == "completed"
    assert [e["type"] for e in events].count("completion") == 1
    assert "***" in messages(events)
    assert SECRET_TOKEN not in stack.dump() and SECRET_PASSWORD not in stack.dump()
    dying.engine.dispose()


def test_a_task_with_secrets_is_run_by_the_replica_holding_them(stack: Stack) -> None:
    other = stack.replica()
    task_id = asyncio.run(stack.service.create_task(REF, values(), {"apiToken": SECRET_TOKEN}, ALICE))
    assert other.claim() is None
    claimed = stack.service.claim()
    assert claimed is not None and claimed.id == task_id
    other.engine.dispose()


def test_two_workers_never_run_the_same_task(stack: Stack) -> None:
    replicas = [stack.replica(poll_seconds=0.05), stack.replica(poll_seconds=0.05)]
    plain = [{k: v for k, v in values(name=f"svc-{i}").items() if k != "dbPassword"} for i in range(6)]
    ids = [asyncio.run(stack.service.create_task(REF, v, None, ALICE)) for v in plain]

    async def scenario() -> None:
        workers = [asyncio.create_task(ScaffolderWorker(r, idle_seconds=0.05).run_forever()) for r in replicas]

        async def all_done() -> bool:
            tasks = (await stack.service.list_tasks())["tasks"]
            return all(t["status"] in ("completed", "failed") for t in tasks)

        try:
            await wait_for(all_done, timeout=40)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    asyncio.run(scenario())
    for task_id in ids:
        events = asyncio.run(stack.service.events(task_id))
        assert asyncio.run(stack.service.get_task(task_id))["status"] == "completed"
        assert messages(events).count("Starting up task with 5 steps") == 1
    for r in replicas:
        r.engine.dispose()

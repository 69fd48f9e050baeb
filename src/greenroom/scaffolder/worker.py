"""The task runner: claims open tasks under a lease and runs them, one workspace per task.

Every replica runs one ``ScaffolderWorker``; they share the work through the lease in the task
row (see ``greenroom.scaffolder.store``), so a task runs on exactly one of them. For each claimed
task the worker:

* creates ``$GREENROOM_HOME/scaffolder/tasks/<id>`` (removing a leftover of a crashed run) and
  deletes it afterwards, whatever happened;
* runs ``engine.runner.run_template``; log events are queued by the runner's callback and written
  by a flusher in order, so the task page sees them while the step is still running;
* heartbeats every ``lease_seconds / 3``; the heartbeat also reads the cancel flag (the run stops
  at the next step boundary) and notices a lost lease (another replica recovered the task: this
  run stops and writes nothing more);
* writes the terminal status together with the completion event, after every log event.

Time per task is bounded (``task_timeout_seconds`` of the service). At start, and every lease
period, tasks whose lease expired are recovered (failed, with a ``recovered`` event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from typing import Any

from greenroom.core.logs import event as log_event
from greenroom.scaffolder.engine.runner import TaskFailedError, run_template
from greenroom.scaffolder.model import CancelledError, JsonObject, ParameterValidationError, TaskEvent
from greenroom.scaffolder.service import ClaimedTask, ScaffolderService, templates

log = logging.getLogger("greenroom.scaffolder.worker")


def _redact(text: str, secrets: list[Any]) -> str:
    for value in sorted((s for s in secrets if isinstance(s, str) and len(s) >= 3), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


class _Run:
    """State of one task run: pending events, flags set by the heartbeat."""

    def __init__(self, service: ScaffolderService, task: ClaimedTask) -> None:
        self.service, self.task = service, task
        self.pending: list[tuple[str, JsonObject]] = []
        self.cancel_requested = False
        self.lost = False
        self.done = False
        self.wake = asyncio.Event()

    def sink(self, event: TaskEvent) -> None:
        # completion/cancelled come from the runner too, but the worker writes the terminal event
        # itself, with the status change, so status and completion can never disagree
        if event.type == "log":
            self.pending.append(("log", event.body))
            self.wake.set()

    async def flush(self) -> None:
        if self.pending and not self.lost:
            batch, self.pending = self.pending, []
            await asyncio.to_thread(self.service.append_events, self.task.id, batch)

    async def flusher(self) -> None:
        """Write queued events until ``done``; a batch in flight is never abandoned (cancelling
        a thread's await would let a later write overtake it), so the order is the run's order."""
        while not self.done:
            await self.wake.wait()
            self.wake.clear()
            await self.flush()
            if not self.done:
                await asyncio.sleep(0.05)  # batch bursts of log lines into one transaction
        await self.flush()

    async def heartbeat(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                ours, cancel = await asyncio.to_thread(self.service.heartbeat, self.task.id)
            except Exception:  # a database hiccup; the next beat retries
                log.exception("scaffolder.heartbeat_failed", extra={"fields": {"task": self.task.id}})
                continue
            self.lost = self.lost or not ours
            self.cancel_requested = self.cancel_requested or cancel
            if self.lost:
                return


class ScaffolderWorker:
    def __init__(self, service: ScaffolderService, *, concurrency: int = 4, idle_seconds: float = 0.5) -> None:
        self.service = service
        self.concurrency = concurrency
        self.idle_seconds = idle_seconds

    async def run_forever(self) -> None:
        """Claim and run tasks until cancelled; running tasks are cancelled with the loop (their
        leases then expire and another replica reports them failed)."""
        running: set[asyncio.Task[None]] = set()
        last_recovery = 0.0
        try:
            while True:
                try:
                    if time.monotonic() - last_recovery >= self.service.lease_seconds:
                        last_recovery = time.monotonic()
                        await asyncio.to_thread(self.service.recover_expired)
                    claimed = None
                    if len(running) < self.concurrency:
                        claimed = await asyncio.to_thread(self.service.claim)
                except Exception:  # keep the loop alive; leases protect the rows
                    log.exception("scaffolder.worker_loop_failed")
                    claimed = None
                if claimed is not None:
                    job = asyncio.create_task(self.run_task(claimed))
                    running.add(job)
                    job.add_done_callback(running.discard)
                    continue
                await asyncio.sleep(self.idle_seconds)
        finally:
            for job in list(running):
                job.cancel()
            for job in list(running):
                with contextlib.suppress(BaseException):
                    await job

    async def run_once(self) -> str | None:
        """Claim one task and run it to the end; its id, or None if nothing was open."""
        claimed = await asyncio.to_thread(self.service.claim)
        if claimed is None:
            return None
        await self.run_task(claimed)
        return claimed.id

    async def run_task(self, task: ClaimedTask) -> None:
        service = self.service
        run = _Run(service, task)
        workspace = service.workspace_for(task.id)
        shutil.rmtree(workspace, ignore_errors=True)
        workspace.mkdir(parents=True)
        flusher = asyncio.create_task(run.flusher())
        beat = asyncio.create_task(run.heartbeat(max(service.lease_seconds / 3, 0.05)))
        secret_texts = [*task.secrets.secrets.values(), *task.secrets.values.values()]
        status: str = "failed"
        body: JsonObject = {"message": "Run completed with status: failed"}
        output: JsonObject | None = None
        try:
            values = {**(task.spec.get("parameters") or {}), **task.secrets.values}
            user = task.spec.get("user") or {}
            result = await asyncio.wait_for(run_template(
                templates.entity_from_spec(task.spec), values, workspace, actions=service.actions,
                template_info=templates.template_info(task.spec), secrets=task.secrets.secrets,
                on_event=run.sink, is_cancelled=lambda: run.cancel_requested or run.lost,
                user_ref=user.get("ref"), user_entity=user.get("entity"), task_id=task.id,
                services=service.services(), expressions=service.expressions,
                max_seconds=service.task_timeout_seconds,
            ), service.task_timeout_seconds + 30)
            status, output = "completed", result.output
            body = {"message": "Run completed with status: completed", "output": result.output}
        except CancelledError:
            status, body = "cancelled", {"message": "Run completed with status: cancelled"}
        except TaskFailedError as exc:
            body["error"] = {"name": "Error", "message": exc.message}
        except ParameterValidationError as exc:
            body["error"] = {"name": "InputError", "message": exc.message + (
                "; if the template has password fields, retry the task giving them in `secrets`")}
        except TimeoutError:
            body["error"] = {"name": "TimeoutError",
                             "message": f"the task ran longer than {service.task_timeout_seconds:.0f} s"}
        except asyncio.CancelledError:
            # shutting down: leave the row processing; its lease expires and recovery reports it
            beat.cancel()
            flusher.cancel()
            shutil.rmtree(workspace, ignore_errors=True)
            raise
        except Exception as exc:  # noqa: BLE001 - any failure becomes the task's failure
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            body["error"] = {"name": type(exc).__name__, "message": _redact(message, secret_texts)}
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        run.done = True
        run.wake.set()
        try:
            await flusher
            if not run.lost:
                await asyncio.to_thread(service.finish, task.id, status, body, output)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        log_event(log, "scaffolder.task_ran", task=task.id, status=status, lost=run.lost)

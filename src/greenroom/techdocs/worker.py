"""The build loop: claim a due build, run it in a thread, repeat; idle-poll when nothing is due.

Several workers (in one process or many replicas) can run side by side: claims are leased rows,
so each build runs once; a worker that dies leaves its lease to expire and the job is claimed
again (up to ``max_attempts``). The loop never dies of a failed build: errors are logged and the
loop backs off.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

from greenroom.core.logs import event
from greenroom.techdocs.service import TechDocsService

log = logging.getLogger("greenroom.techdocs.worker")


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def run_builds(service: TechDocsService, *, worker_id: str | None = None, idle_s: float = 1.0,
                     stop: asyncio.Event | None = None) -> None:
    """Run builds until cancelled (or ``stop`` is set)."""
    wid = worker_id or new_worker_id()
    failures = 0
    while stop is None or not stop.is_set():
        try:
            job = await asyncio.to_thread(service.claim_and_run_next, wid)
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            log.exception("techdocs.worker.error", extra={"fields": {"worker": wid}})
            await asyncio.sleep(min(60.0, idle_s * 2 ** failures))
            continue
        if job is None:
            await asyncio.sleep(idle_s)
        else:
            event(log, "techdocs.worker.done", entity=job.entity_ref, status=job.status.value)


def make_worker(service: TechDocsService, idle_s: float = 1.0) -> Callable[[], Awaitable[None]]:
    """A zero-argument coroutine factory for ``Portal.workers``."""

    async def worker() -> None:
        try:
            await run_builds(service, idle_s=idle_s)
        finally:
            await asyncio.to_thread(service.close)

    return worker

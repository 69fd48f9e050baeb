"""The refresh loop: claims due locations (leases make replicas share the work) and reads them."""

from __future__ import annotations

import asyncio
import logging

from greenroom.catalog.service import CatalogService

log = logging.getLogger("greenroom.catalog.worker")


async def refresh_loop(service: CatalogService, idle_seconds: float = 1.0) -> None:
    """Forever: process what is due; sleep ``idle_seconds`` when nothing was."""
    while True:
        try:
            done = await asyncio.to_thread(service.process_due, 20)
        except Exception:  # noqa: BLE001 - keep the loop alive; the lease frees the row
            log.exception("catalog.refresh_loop_failed")
            done = 0
        if not done:
            await asyncio.sleep(idle_seconds)

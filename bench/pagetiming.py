"""What the page benchmarks share (bench/pages.py, bench/techdocs.py)."""

from __future__ import annotations

import time

import httpx


def measure(client: httpx.Client, paths: list[str], requests: int) -> tuple[list[float], list[float]]:
    """GET ``paths`` in turn ``requests`` times: server-side ms (from Server-Timing, when the
    page sends it) and client round-trip ms. Any non-200 ends the benchmark."""
    server_ms, client_ms = [], []
    for i in range(requests):
        path = paths[i % len(paths)]
        t = time.perf_counter()
        r = client.get(path)
        client_ms.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"GET {path}: {r.status_code}\n{r.text[:500]}")
        timing = r.headers.get("server-timing", "")
        if "dur=" in timing:
            server_ms.append(float(timing.split("dur=")[1]))
    return server_ms, client_ms

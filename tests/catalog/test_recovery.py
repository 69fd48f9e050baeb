"""Work survives a crash, and several portal processes on one database share it safely.

These run real `greenroom serve` processes (killed with SIGKILL mid-ingest) on real databases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SHARED, TOKEN, free_port

GREENROOM = str(Path(sys.executable).parent / "greenroom")


def generate(tmp: Path, n: int) -> tuple[Path, int]:
    out = tmp / "catalog"
    subprocess.run([sys.executable, str(SHARED / "bench" / "gen_entities.py"), str(n), str(out),
                    "--chunk", "250"], check=True, stdout=subprocess.DEVNULL)
    manifest = json.loads((out / "manifest.json").read_text())
    return out / "catalog-info.yaml", n + manifest["location_entities"] + 1


def start(tmp: Path, name: str, db: dict[str, Any], target: Path, lease: float) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    home = tmp / f"home-{name}"
    home.mkdir(exist_ok=True)
    cfg = {
        "backend": {"listen": {"port": port}, "baseUrl": f"http://127.0.0.1:{port}", "database": db,
                    "auth": {"externalAccess": [{"type": "static", "options": {"token": TOKEN}}]}},
        "catalog": {"locations": [{"type": "file", "target": str(target)}],
                    "processingLeaseSeconds": lease, "refreshIntervalSeconds": 3600},
        "greenroom": {"home": str(home)},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps(cfg))
    log = tmp / f"{name}.log"
    proc = subprocess.Popen([GREENROOM, "serve", "--config", str(path)], stdout=subprocess.DEVNULL,
                            stderr=open(log, "ab"))
    return proc, f"http://127.0.0.1:{port}", log


def total(url: str) -> int:
    try:
        r = httpx.get(f"{url}/api/catalog/entities/by-query?limit=0",
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        return int(r.json()["totalItems"]) if r.status_code == 200 else -1
    except httpx.HTTPError:
        return -1


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_killed_mid_ingest_the_next_start_finishes_the_job(tmp_path: Path, db_config: dict[str, Any]) -> None:
    target, expected = generate(tmp_path, 4000)
    proc, url, _ = start(tmp_path, "first", db_config, target, lease=1.5)
    try:
        assert wait_for(lambda: total(url) > 0, 60), "nothing was ingested"
        seen = total(url)
        os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
        proc.wait()
    finally:
        stop(proc)
    assert 0 < seen < expected, f"kill came too late to prove anything ({seen}/{expected})"

    proc, url, log = start(tmp_path, "second", db_config, target, lease=1.5)
    try:
        assert wait_for(lambda: total(url) == expected, 120), f"{total(url)}/{expected} after restart"
        h = {"Authorization": f"Bearer {TOKEN}"}
        facets = httpx.get(f"{url}/api/catalog/entity-facets?facet=kind", headers=h).json()["facets"]["kind"]
        assert sum(f["count"] for f in facets) == expected  # no duplicated search rows
        loc_errors = httpx.get(f"{url}/api/catalog/entities/by-query?filter=kind=location&limit=200",
                               headers=h).json()["items"]
        assert not [e for e in loc_errors if e.get("status")], "processing errors after recovery"
    finally:
        stop(proc)
    assert "Traceback" not in log.read_text()


def test_two_processes_share_the_work_without_processing_a_location_twice(
        tmp_path: Path, db_config: dict[str, Any]) -> None:
    if db_config["client"] != "pg":
        pytest.skip("several replicas are a PostgreSQL deployment")
    target, expected = generate(tmp_path, 3000)
    a, url_a, log_a = start(tmp_path, "a", db_config, target, lease=30)
    b, url_b, log_b = start(tmp_path, "b", db_config, target, lease=30)
    try:
        assert wait_for(lambda: total(url_a) == expected and total(url_b) == expected, 120)
    finally:
        stop(a)
        stop(b)
    processed: dict[str, int] = {}
    for log in (log_a, log_b):
        for line in log.read_text().splitlines():
            if '"catalog.location_processed"' in line:
                loc = json.loads(line)["location"]
                processed[loc] = processed.get(loc, 0) + 1
    locations = 1 + 2 * (expected - 1 - 3000 - 1)  # root + (Location file + chunk file) per part
    assert len(processed) == locations
    assert max(processed.values()) == 1, {k: v for k, v in processed.items() if v > 1}

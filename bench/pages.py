#!/usr/bin/env python3
"""Page render benchmark: the entity page and the catalog list on a large catalog.

Usage:
  bench/pages.py [--n 100000] [--db sqlite|pg] [--requests 200]

Generates N entities with /work/shared/bench/gen_entities.py (cached under .bench/pages-<N>),
registers the root catalog-info.yaml through CatalogService, starts a real uvicorn server with
the web pages wired, then requests each page ``--requests`` times (rotating entity names from
manifest.json) and prints median and p95 of the server-side time (the ``Server-Timing`` header
the page router sets) and of the client round trip. Target from the issue: p50 <= 30 ms for the
entity page and the catalog list.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pagetiming import measure
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
GEN = Path(os.environ.get("GREENROOM_SHARED", "/work/shared")) / "bench" / "gen_entities.py"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def generate(n: int) -> Path:
    out = ROOT / ".bench" / f"pages-{n}"
    if not (out / "manifest.json").exists():
        subprocess.run([sys.executable, str(GEN), str(n), str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(db_kind: str, home: Path) -> tuple[Any, str, Any]:
    from greenroom.app import create_app
    from greenroom.core.config import load_settings

    schema = None
    if db_kind == "pg":
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with create_engine(PG_URL, isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        database = {"client": "pg",
                    "connection": f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"}
    else:
        database = {"client": "sqlite", "connection": str(home / "greenroom.db")}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = load_settings([], overrides={
        "greenroom": {"home": str(home)}, "backend": {"database": database, "baseUrl": url,
                                                     "reading": {"allowFiles": [str(ROOT / ".bench")]}},
        "app": {"baseUrl": url}, "catalog": {"refreshIntervalSeconds": 86400}})
    app = create_app(settings, run_workers=False)
    portal = app.state.portal
    if "web" not in portal.services:  # until app._build wires the web context itself
        from greenroom.web import views
        from greenroom.web.service import WebService

        portal.services["web"] = WebService(settings, portal.services)
        app.include_router(views.router)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(600):
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return portal, url, (server, schema)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * q))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    ap.add_argument("--requests", type=int, default=200)
    a = ap.parse_args()

    data = generate(a.n)
    manifest = json.loads((data / "manifest.json").read_text())
    home = ROOT / ".bench" / f"pages-home-{uuid.uuid4().hex[:6]}"
    home.mkdir(parents=True)
    portal, url, (server, schema) = start(a.db, home)
    catalog = portal.services["catalog"]
    t = time.perf_counter()
    catalog.register_location("file", str(data / "catalog-info.yaml"))
    stats = catalog.stats()
    print(f"registered {stats['entities']} entities in {time.perf_counter() - t:.1f} s ({a.db})")

    token = portal.auth.admin_token
    client = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=120)
    comps = manifest["components"][:50]
    groups = manifest["groups"][:20]
    cases: list[tuple[str, list[str]]] = [
        ("entity page (component)", [f"/catalog/default/component/{c}" for c in comps]),
        ("entity page, graph depth 2", [f"/catalog/default/component/{c}?depth=2" for c in comps]),
        ("catalog list", ["/catalog"]),
        ("catalog list kind=component", ["/catalog?kind=component"]),
        ("catalog list kind+type, sorted by owner", ["/catalog?kind=component&type=service&sort=owner"]),
        ("catalog list, page 20", ["/catalog?kind=component&cursor=" + _cursor(19 * 25)]),
        ("group page", [f"/catalog/default/group/{g}" for g in groups]),
        ("home", ["/"]),
    ]
    print(f"{'page':42} {'server p50':>10} {'p95':>8} {'client p50':>11} {'p95':>8}   (ms, {a.requests} requests)")
    for label, paths in cases:
        measure(client, paths, min(5, a.requests))  # warm-up
        s, c = measure(client, paths, a.requests)
        print(f"{label:42} {statistics.median(s):10.1f} {pct(s, .95):8.1f} {statistics.median(c):11.1f} "
              f"{pct(c, .95):8.1f}")
    server.should_exit = True
    if schema:
        portal.engine.dispose()
        with create_engine(PG_URL, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _cursor(offset: int) -> str:
    import base64

    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


if __name__ == "__main__":
    main()

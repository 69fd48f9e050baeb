#!/usr/bin/env python3
"""TechDocs benchmark: build time, docs page serving, and search with docs on a demo portal.

Usage:
  bench/techdocs.py [--n 10000] [--requests 200] [--builds 3]

1. Build: /work/shared/corpus/techdocs/backstage__documented-component through
   ``TechDocsService`` (queue, claim, MkDocs in the warm build server, store, record, index the
   pages in search) until ``service.page()`` serves it; one warm-up build, then the median of
   ``--builds``. Target <= 0.8 s.
2. Page: a real uvicorn server with the demo organisation (``greenroom serve --demo``), its docs
   built by the portal's own worker; ``GET /docs/default/component/tracking-web/`` and two
   other pages ``--requests`` times with a session cookie: server time (``Server-Timing``) and
   round trip. Target p50 <= 20 ms.
3. Search: the same portal plus N generated entities (/work/shared/bench/gen_entities.py,
   cached under .bench/techdocs-<N>): ``/api/search/query`` for exact names, catalog words and
   docs words, p50/p95; and the /search page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pagetiming import measure

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GREENROOM_SHARED", "/work/shared"))
GEN = SHARED / "bench" / "gen_entities.py"
DOCS = SHARED / "corpus" / "techdocs" / "backstage__documented-component"
DOCS_WORDS = ["postcode", "release checklist", "local development", "runbook", "vehicle routing",
              "configuration", "changelog", "neighbour"]


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * q))]


class Entities:
    """The one documented entity of the build benchmark (the catalog's ``get_entity``)."""

    def __init__(self, catalog_file: Path) -> None:
        self.entity = {
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "documented-component", "namespace": "default",
                         "annotations": {"backstage.io/managed-by-location": f"file:{catalog_file}",
                                         "backstage.io/techdocs-ref": "dir:."}},
            "spec": {"type": "service", "owner": "group:default/team-a", "lifecycle": "production"}}

    def get_entity(self, ref: str) -> dict[str, Any] | None:
        return self.entity if ref.lower() == "component:default/documented-component" else None


def bench_build(builds: int) -> None:
    from greenroom.core import db
    from greenroom.core.config import load_settings
    from greenroom.search.service import SearchService
    from greenroom.techdocs.engine.storage import LocalStorage
    from greenroom.techdocs.service import TechDocsService
    from greenroom.techdocs.service.indexing import DocsIndexer

    with tempfile.TemporaryDirectory(prefix="bench-techdocs-") as tmp:
        home = Path(tmp)
        engine = db.make_engine(f"sqlite:///{home / 'g.db'}")
        db.upgrade(engine)
        settings = load_settings([], overrides={"greenroom": {"home": str(home)}})
        service = TechDocsService(engine, settings, LocalStorage(home / "techdocs"),
                                  Entities(DOCS / "catalog-info.yaml"))
        search = SearchService(engine)
        indexer = DocsIndexer(service, search)
        index_s: list[float] = []

        def timed_index(ref: str) -> None:
            t = time.perf_counter()
            indexer.on_built(ref)
            index_s.append(time.perf_counter() - t)

        service.add_build_listener(timed_index)
        t = time.perf_counter()
        service.builder.start()
        print(f"build server started (imports, warm build) in {time.perf_counter() - t:.2f} s")
        ref = "component:default/documented-component"
        times, mkdocs = [], []
        for i in range(builds + 1):
            t = time.perf_counter()
            service.request_build(ref, "bench")
            row = service.claim_and_run_next("bench")
            page = service.page(ref, "")
            elapsed = time.perf_counter() - t
            if row is None or row.status.value != "succeeded" or not page.body_html:
                raise SystemExit(f"build failed: {row}")
            if i:  # the first is the warm-up
                times.append(elapsed)
                mkdocs.append(row.duration_s or 0.0)
        pages = len(indexer.indexed_keys(ref))
        print(f"build documented-component until stored and servable: median {statistics.median(times):.3f} s "
              f"(runs {', '.join(f'{x:.3f}' for x in times)}; MkDocs {statistics.median(mkdocs):.3f} s; "
              f"search indexing of {pages} documents {statistics.median(index_s[1:]) * 1000:.1f} ms)  target <= 0.8 s")
        service.close()
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_demo(home: Path) -> tuple[Any, str, uvicorn.Server]:
    from greenroom.app import create_app
    from greenroom.cli import DEMO_DIR
    from greenroom.core.config import LocationSpec, load_settings

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = load_settings([], overrides={
        "greenroom": {"home": str(home), "demo": True, "logLevel": "warning"},
        "backend": {"database": {"client": "sqlite", "connection": str(home / "greenroom.db")}, "baseUrl": url,
                    "reading": {"allowFiles": ["/"]}},  # the bench registers files it generated
        "app": {"baseUrl": url}, "catalog": {"refreshIntervalSeconds": 86400}})
    settings.catalog.locations.insert(0, LocationSpec(type="file", target=str(DEMO_DIR / "catalog-info.yaml")))
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(600):
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return app.state.portal, url, server


def wait_for_docs(client: httpx.Client, count: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        builds = client.get("/api/techdocs/builds").json()
        if len(builds) >= count and all(b["status"] in ("succeeded", "failed") for b in builds):
            return
        time.sleep(0.2)
    raise SystemExit("demo docs did not build in time")


def report(label: str, s: list[float], c: list[float], target: str = "") -> None:
    srv = f"{statistics.median(s):10.1f} {pct(s, .95):8.1f}" if s else f"{'-':>10} {'-':>8}"
    print(f"{label:44} {srv} {statistics.median(c):11.1f} {pct(c, .95):8.1f}  {target}")


def bench_portal(n: int, requests: int) -> None:
    data = ROOT / ".bench" / f"techdocs-{n}"
    if n and not (data / "manifest.json").exists():
        subprocess.run([sys.executable, str(GEN), str(n), str(data)], check=True, stdout=subprocess.DEVNULL)
    home = Path(tempfile.mkdtemp(prefix="bench-techdocs-portal-"))
    portal, url, server = start_demo(home)
    try:
        api = httpx.Client(base_url=url, headers={"authorization": f"Bearer {portal.auth.admin_token}"}, timeout=120)
        wait_for_docs(api, 4)
        pages = httpx.Client(base_url=url, timeout=60)
        r = pages.post("/signin/token", data={"token": portal.auth.admin_token, "next": "/"})
        assert r.status_code == 303, r.text
        print(f"\n{'request':44} {'server p50':>10} {'p95':>8} {'client p50':>11} {'p95':>8}   "
              f"(ms, {requests} requests)")
        doc_pages = ["/docs/default/component/tracking-web/", "/docs/default/component/tidewater-py/getting-started/",
                     "/docs/default/component/route-optimizer/runbook/"]
        for label, paths, target in [("docs page", doc_pages, "target p50 <= 20 ms"),
                                     ("docs home /docs", ["/docs"], ""),
                                     ("entity Docs tab", ["/catalog/default/component/tracking-web?tab=docs"], "")]:
            measure(pages, paths, 5)
            s, c = measure(pages, paths, requests)
            report(label, s, c, target)
        manifest: dict[str, Any] = {}
        if n:
            catalog = portal.services["catalog"]
            t = time.perf_counter()
            catalog.register_location("file", str(data / "catalog-info.yaml"))
            catalog.flush_listeners(timeout=600)
            print(f"\nregistered and indexed {catalog.stats()['entities']} entities "
                  f"(demo + {n} generated) in {time.perf_counter() - t:.1f} s; "
                  f"{portal.services['search'].count()} search documents")
            manifest = json.loads((data / "manifest.json").read_text())
        names = [x for k in ("components", "apis", "groups") for x in manifest.get(k, [])[:40]]
        cases = [("search exact names", [f"/api/search/query?term={x}" for x in names] or
                  ["/api/search/query?term=tracking-web"]),
                 ("search docs words", [f"/api/search/query?term={w}" for w in DOCS_WORDS]),
                 ("search docs words, Docs type",
                  [f"/api/search/query?term={w}&types[0]=techdocs" for w in DOCS_WORDS]),
                 ("search common words", [f"/api/search/query?term={w}" for w in ("service", "api", "team", "payments")]),
                 ("suggest (header box)", [f"/api/search/suggest?term={x[:5]}" for x in names or ["track"]])]
        print()
        for label, paths in cases:
            measure(api, paths, 5)
            s, c = measure(api, paths, requests)
            report(label, s, c)
        for label, paths in [("search page /search (tabs, facets)",
                              [f"/search?q={w}" for w in ("service", "postcode", "tracking", "payments")])]:
            measure(pages, paths, 5)
            s, c = measure(pages, paths, requests)
            report(label, s, c)
    finally:
        server.should_exit = True
        time.sleep(0.5)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="generated entities added to the demo for search")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--builds", type=int, default=3)
    a = ap.parse_args()
    bench_build(a.builds)
    bench_portal(a.n, a.requests)


if __name__ == "__main__":
    main()

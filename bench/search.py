#!/usr/bin/env python3
"""Search benchmark: index generated entities (and docs pages), then time queries.

Usage:
  bench/search.py [--n 10000] [--pages 0] [--db sqlite|pg] [--seconds 10] [--threads 8]

Generates entities with /work/shared/bench/gen_entities.py (cached under /tmp/search<N>),
indexes them through SearchService, then reports: indexing time, how many manifest names rank
first for their exact-name query, median/p95 over the manifest names plus a few words, and
throughput with --threads concurrent clients. ``--pages`` adds synthetic TechDocs pages.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text

from greenroom.core import db
from greenroom.search.model import TECHDOCS_TYPE, SearchDocument, entity_document
from greenroom.search.service import SearchService

GEN = Path(os.environ.get("GREENROOM_SHARED", "/work/shared")) / "bench" / "gen_entities.py"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WORDS = ["payments", "stars", "service", "customer realtime", "billing api", "kafka", "pci",
         "team-payments", "golden", "processes"]


def entities(n: int) -> tuple[list[dict], dict]:
    out = Path(f"/tmp/search{n // 1000}k")
    if not (out / "manifest.json").exists():
        subprocess.run([sys.executable, str(GEN), str(n), str(out)], check=True, stdout=subprocess.DEVNULL)
    manifest = json.loads((out / "manifest.json").read_text())
    ents: list[dict] = []
    for f in sorted(out.glob("chunk-*.yaml")):
        ents.extend(d for d in yaml.load_all(f.read_text(), Loader=yaml.CSafeLoader) if d)
    return ents, manifest


def pages(n: int, names: list[str]) -> Iterator[SearchDocument]:
    rng = random.Random(7)
    vocab = ["deploy", "configure", "monitor", "rollback", "alert", "dashboard", "runbook", "oncall", "latency", "database", "migration", "schema", "token", "secret", "rotate", "backup", "restore", "incident", "review", "release"]
    for i in range(n):
        owner = names[i % len(names)]
        body = " ".join(rng.choice(vocab) for _ in range(300))
        yield SearchDocument(
            type=TECHDOCS_TYPE, location=f"/docs/default/component/{owner}/page-{i}/",
            title=f"{rng.choice(vocab).title()} {rng.choice(vocab)} guide {i}", text=body,
            fields={"kind": "component", "namespace": "default", "name": owner,
                    "entityRef": f"component:default/{owner}"}, authorization=f"component:default/{owner}")


def timed(fn, *a, **kw) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn(*a, **kw)
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--pages", type=int, default=0)
    ap.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()

    schema = None
    if a.db == "pg":
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = db.make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    else:
        tmp = tempfile.mkdtemp(prefix="search-bench-")
        engine = db.make_engine(f"sqlite:///{tmp}/search.db")
    try:
        db.upgrade(engine)
        svc = SearchService(engine)
        t0 = time.perf_counter()
        ents, manifest = entities(a.n)
        t_parse = time.perf_counter() - t0
        t0 = time.perf_counter()
        svc.replace_all("software-catalog", (entity_document(e) for e in ents))
        t_index = time.perf_counter() - t0
        names = [x for k in ("components", "apis", "resources", "groups", "systems", "domains")
                 for x in manifest[k]]
        if a.pages:
            t0 = time.perf_counter()
            svc.replace_all(TECHDOCS_TYPE, pages(a.pages, manifest["components"]))
            print(f"indexed {a.pages} docs pages in {time.perf_counter() - t0:.1f} s")
        print(f"db={a.db} n={a.n}: parse {t_parse:.1f} s, index {t_index:.1f} s "
              f"({len(ents) / t_index:.0f} docs/s)")

        firsts = 0
        for name in names:
            r = svc.query(name, page_limit=1).results
            firsts += bool(r) and r[0].document.name == name
        print(f"exact name ranks first: {firsts} of {len(names)}")

        rng = random.Random(1)
        sample = rng.sample(names, min(2000, len(names))) + WORDS * 20
        rng.shuffle(sample)
        for t in sample[:50]:
            svc.query(t)  # warm caches
        lat = sorted(timed(svc.query, t) for t in sample)
        p50, p95 = statistics.median(lat), lat[int(len(lat) * 0.95)]
        print(f"query (names + words, {len(lat)} queries): median {p50:.2f} ms, p95 {p95:.2f} ms, "
              f"max {lat[-1]:.1f} ms")
        wl = sorted(timed(svc.query, w) for w in WORDS * 10)
        print(f"query (common words only): median {statistics.median(wl):.2f} ms, "
              f"p95 {wl[int(len(wl) * 0.95)]:.2f} ms")
        sl = sorted(timed(svc.suggest, n[: rng.randint(2, 8)]) for n in sample[:500])
        print(f"suggest: median {statistics.median(sl):.2f} ms, p95 {sl[int(len(sl) * 0.95)]:.2f} ms")

        done = [0] * a.threads
        stop = time.perf_counter() + a.seconds

        def client(i: int) -> None:
            r = random.Random(i)
            while time.perf_counter() < stop:
                svc.query(r.choice(sample))
                done[i] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(a.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"throughput, {a.threads} threads: {sum(done) / a.seconds:.0f} queries/s")
    finally:
        engine.dispose()
        if schema:
            with admin.connect() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()

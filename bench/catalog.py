#!/usr/bin/env python3
"""Catalog benchmark, measured the way ../shared/bench measured Backstage 4.0.

For each N: generate the synthetic catalog (shared/bench/gen_entities.py, nested layout), start
`greenroom serve` as a separate process on a fresh database, register the root file location,
time until every entity is visible through /entities/by-query (totalItems), run the six requests
200 times each, then 8 concurrent clients for 15 s on by-name and by-query, sampling the resident
memory of the whole process tree every 50 ms. Prints Greenroom, Backstage and the ratio.

    python bench/catalog.py                 # N=10000 on SQLite
    python bench/catalog.py --n 10000 100000 --db sqlite pg
    python bench/catalog.py --quick         # N=1000, 3 s throughput
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GREENROOM_SHARED", ROOT.parent / "shared"))
WORK = ROOT / ".bench"
TOKEN = "bench-token-0123456789"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

REQUESTS = [
    ("by-name", "by-name"),
    ("by-query kind=component limit=50", "by-query"),
    ("by-query kind=component limit=50 orderField=metadata.name", "by-query-ordered"),
    ("entity-facets spec.type (kind=component)", "facets"),
    ("fullText name/title (kind=component, limit=20)", "fulltext"),
    ("by-refs 100 refs", "by-refs"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        stack.extend(children.get(p, []))
    return total / 1024


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            stats[int(entry)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        if p in stats:
            total += int(stats[p][11]) + int(stats[p][12])
        stack.extend(children.get(p, []))
    return total / os.sysconf("SC_CLK_TCK")


def wait_quiet(pid: int, cap_s: float, below: float = 0.15) -> float:
    """Wait until the server's process tree uses less than ``below`` of a core for 2 s (its
    background work after ingestion: search indexing, docs builds). Returns the seconds waited;
    gives up after ``cap_s``."""
    start = time.perf_counter()
    quiet = 0
    last = tree_cpu_s(pid)
    while time.perf_counter() - start < cap_s:
        time.sleep(0.5)
        now = tree_cpu_s(pid)
        quiet = quiet + 1 if (now - last) / 0.5 < below else 0
        last = now
        if quiet >= 4:
            break
    return time.perf_counter() - start


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, False

    def run(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, tree_rss_mib(self.pid))
            time.sleep(0.05)


def generate(n: int) -> Path:
    out = WORK / f"gen-{n}"
    if not (out / "manifest.json").exists():
        subprocess.run([sys.executable, str(SHARED / "bench" / "gen_entities.py"), str(n), str(out)],
                       check=True, stdout=subprocess.DEVNULL)
    return out


def start_server(db: str, home: Path, port: int) -> subprocess.Popen[bytes]:
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    if db == "pg":
        schema = f"bench_{os.getpid()}"
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-c",
                        f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"], check=True)
        database = {"client": "pg", "connection": f"{PG_URL}?options=-csearch_path%3D{schema}"}
    else:
        database = {"client": "sqlite", "connection": str(home / "greenroom.db")}
    config = {
        "backend": {"listen": {"host": "127.0.0.1", "port": port}, "database": database,
                    "reading": {"allowFiles": [str(WORK)]},
                    "baseUrl": f"http://127.0.0.1:{port}",
                    "auth": {"externalAccess": [{"type": "static", "options": {"token": TOKEN}}]}},
        "greenroom": {"home": str(home), "logLevel": "warning"},
        "catalog": {"refreshIntervalSeconds": 3600},
    }
    cfg = home / "app-config.yaml"
    cfg.write_text(json.dumps(config))
    exe = shutil.which("greenroom", path=str(Path(sys.executable).parent)) or "greenroom"
    return subprocess.Popen([exe, "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=open(home / "server.log", "wb"))


def wait_http(url: str, timeout: float = 60) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("server did not start; see .bench/*/server.log")


def request_for(name: str, manifest: dict[str, Any], i: int) -> tuple[str, str, Any]:
    comps = manifest["components"]
    if name == "by-name":
        return "GET", f"/api/catalog/entities/by-name/component/default/{comps[i % len(comps)]}", None
    if name == "by-query":
        return "GET", "/api/catalog/entities/by-query?filter=kind=component&limit=50", None
    if name == "by-query-ordered":
        return "GET", "/api/catalog/entities/by-query?filter=kind=component&limit=50&orderField=metadata.name,asc", None
    if name == "facets":
        return "GET", "/api/catalog/entity-facets?facet=spec.type&filter=kind=component", None
    if name == "fulltext":
        word = comps[i % len(comps)].split("-")[1]
        return ("GET", "/api/catalog/entities/by-query?filter=kind=component&fullTextFilterTerm="
                f"{word}&fullTextFilterFields=metadata.name,metadata.title&orderField=metadata.name,asc&limit=20",
                None)
    refs = [f"component:default/{comps[(i * 100 + k) % len(comps)]}" for k in range(100)]
    return "POST", "/api/catalog/entities/by-refs", {"entityRefs": refs}


def latency(client: httpx.Client, name: str, manifest: dict[str, Any], n: int = 200) -> dict[str, Any]:
    times, bad = [], 0
    for i in range(n + 10):
        method, path, body = request_for(name, manifest, i)
        t = time.perf_counter()
        r = client.request(method, path, json=body)
        dt = (time.perf_counter() - t) * 1000
        if i >= 10:  # warm-up
            times.append(dt)
            bad += r.status_code != 200
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(len(times) * 0.95)], 2),
            "non200": bad}


def throughput(url: str, name: str, manifest: dict[str, Any], seconds: float, clients: int = 8) -> dict[str, Any]:
    """8 concurrent keep-alive clients. Uses wrk (C, off the GIL) when installed."""
    if shutil.which("wrk") and name != "by-refs":
        _, path, _ = request_for(name, manifest, 0)
        out = subprocess.run(["wrk", "-t", "2", "-c", str(clients), "-d", f"{max(1, int(seconds))}s", "-H",
                              f"Authorization: Bearer {TOKEN}", url + path],
                             capture_output=True, text=True).stdout
        rps = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("Requests/sec"))
        non2xx = sum(int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line)
        return {"req_per_s": round(rps, 1), "non200": non2xx, "tool": "wrk"}
    count, bad = [0] * clients, [0] * clients
    stop_at = time.perf_counter() + seconds

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            i = k
            while time.perf_counter() < stop_at:
                method, path, body = request_for(name, manifest, i)
                r = c.request(method, path, json=body)
                count[k] += 1
                bad[k] += r.status_code != 200
                i += clients

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"req_per_s": round(sum(count) / seconds, 1), "non200": sum(bad), "tool": "python threads"}


def backstage_figures(n: int) -> dict[str, Any] | None:
    runs = [r for r in json.loads((SHARED / "bench" / "backstage-catalog-4.0-results.json").read_text())
            if r["n"] == n and r.get("layout") == "nested" and r.get("latency")]
    if not runs:
        return None
    out: dict[str, Any] = {"all_visible_s": statistics.median(r["all_visible_s"] for r in runs),
                           "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs)}
    for label, _ in REQUESTS:
        out[label] = statistics.median(
            next(x["median_ms"] for x in r["latency"] if x["endpoint"] == label) for r in runs)
    for label in ("by-name", "by-query kind=component limit=50"):
        out["T " + label] = statistics.median(
            next(x["req_per_s"] for x in r["throughput"] if x["endpoint"] == label) for r in runs)
    return out


def run(n: int, db: str, seconds: float, settle_cap_s: float = 120) -> dict[str, Any]:
    gen = generate(n)
    manifest = json.loads((gen / "manifest.json").read_text())
    expected = n + manifest["location_entities"] + 1
    port = free_port()
    home = WORK / f"home-{db}-{n}"
    proc = start_server(db, home, port)
    url = f"http://127.0.0.1:{port}"
    sampler = RssSampler(proc.pid)
    sampler.start()
    try:
        http_ready = wait_http(url)
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600)
        t0 = time.perf_counter()
        r = client.post("/api/catalog/locations", json={"type": "file", "target": str(gen / "catalog-info.yaml")})
        registered = time.perf_counter() - t0
        assert r.status_code == 201, r.text[:500]
        total = 0
        while time.perf_counter() - t0 < 900:
            total = client.get("/api/catalog/entities/by-query?limit=0").json()["totalItems"]
            if total >= expected:
                break
            time.sleep(0.1)
        all_visible = time.perf_counter() - t0
        visible_at_return = client.get("/api/catalog/entities/by-query?limit=0").json()["totalItems"]
        rss_after_ingest = sampler.peak
        settle = wait_quiet(proc.pid, settle_cap_s)
        result: dict[str, Any] = {
            "n": n, "db": db, "expected_total": expected, "total_items": total,
            "http_ready_s": round(http_ready, 2), "register_call_s": round(registered, 2),
            "all_visible_s": round(all_visible, 2), "entities_per_s": round(n / all_visible, 1),
            "peak_rss_after_ingest_mib": round(rss_after_ingest),
            "background_after_ingest_s": round(settle, 1), "settle_cap_s": settle_cap_s,
            "latency": {label: latency(client, key, manifest) for label, key in REQUESTS},
            "visible_when_post_returned": visible_at_return >= expected,
        }
        result["throughput"] = {
            label: throughput(url, key, manifest, seconds)
            for label, key in REQUESTS[:2]
        }
        result["peak_rss_mib"] = round(sampler.peak)
        return result
    finally:
        sampler.stop = True
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def ratio(ours: float, theirs: float | None, higher_is_better: bool = False) -> str:
    if not theirs or not ours:
        return ""
    r = theirs / ours if not higher_is_better else ours / theirs
    return f"{r:.1f}× better" if r >= 1 else f"{1 / r:.1f}× worse"


def report(res: dict[str, Any]) -> None:
    bs = backstage_figures(res["n"]) or {}
    rows = [("ingest: all visible (s)", res["all_visible_s"], bs.get("all_visible_s"), False),
            ("ingest: entities/s", res["entities_per_s"],
             (res["n"] / bs["all_visible_s"]) if bs.get("all_visible_s") else None, True),
            ("visible when POST /locations returns", "yes" if res["visible_when_post_returned"] else "no",
             "no (1 min – hours)", None)]
    for label, _ in REQUESTS:
        rows.append((f"{label}: median ms", res["latency"][label]["median_ms"], bs.get(label), False))
    for label, t in res["throughput"].items():
        rows.append((f"{label}: 8 clients req/s", t["req_per_s"], bs.get("T " + label), True))
    rows.append(("peak RSS of process tree (MiB)", res["peak_rss_mib"], bs.get("peak_rss_mib"), False))
    print(f"\n## N={res['n']} ({res['db']}), {res['total_items']}/{res['expected_total']} entities")
    print(f"| {'measure':<62} | {'Greenroom':>10} | {'Backstage 4.0':>13} | ratio |")
    print(f"|{'-' * 64}|{'-' * 12}|{'-' * 15}|-------|")
    for label, ours, theirs, hib in rows:
        r = ratio(ours, theirs, bool(hib)) if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) else ""
        theirs_s = f"{theirs:.2f}" if isinstance(theirs, float) else (str(theirs) if theirs is not None else "—")
        print(f"| {label:<62} | {ours!s:>10} | {theirs_s:>13} | {r} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[10000])
    ap.add_argument("--db", nargs="+", default=["sqlite"], choices=["sqlite", "pg"])
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    a = ap.parse_args()
    if a.quick:
        a.n, a.seconds = [1000], 3
    WORK.mkdir(exist_ok=True)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    results = []
    for db in a.db:
        for n in a.n:
            res = run(n, db, a.seconds)
            results.append(res)
            report(res)
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

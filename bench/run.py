#!/usr/bin/env python3
"""Every benchmark, one table: measure, Greenroom, Backstage, the physical limit, the target, met.

    python bench/run.py            # catalog 10k SQLite (3 runs), 100k SQLite and PostgreSQL, other benches
    python bench/run.py --quick    # catalog 10k SQLite once, shorter phases: under two minutes
    python bench/run.py --json out.json

Catalog figures come from bench/catalog.py (a real `greenroom serve` per run, measured like
../shared/bench measured Backstage 4.0); each figure is the median over the runs, and every
latency inside a run is already the median of 200 requests after 10 warm-up requests. The other
benchmarks (bench/search.py, pages.py, scaffolder.py, techdocs.py, owned by their contexts) run
as subprocesses; the summary lines they print become rows. One that is missing or fails says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import catalog as cat  # noqa: E402 - bench/catalog.py, next to this file

# (N, db) -> physical limit of ingestion on this machine (../shared/bench/README.md).
LIMIT_INGEST_S = {(10_000, "sqlite"): 1.1, (100_000, "sqlite"): 12.0, (100_000, "pg"): 18.0}
TARGET_INGEST_S = {(10_000, "sqlite"): 3.5, (100_000, "sqlite"): 36.0, (100_000, "pg"): 60.0}
TARGET_RSS_MIB = {10_000: 250, 100_000: 600}
OTHERS = [
    ("search", ["search.py", "--n", "10000", "--seconds", "5"], ["search.py", "--n", "1000", "--seconds", "2"]),
    ("pages", ["pages.py", "--n", "10000", "--requests", "50"], None),
    ("scaffolder", ["scaffolder.py", "--runs", "3"], None),
    ("techdocs", ["techdocs.py", "--n", "1000", "--requests", "50", "--builds", "2"], None),
]

Row = tuple[str, str, str, str, str, str]


def machine() -> str:
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    load = os.getloadavg()
    return (f"{os.cpu_count()} cores, {mem} memory, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
            f"{platform.python_implementation()} {platform.python_version()}, {platform.platform()}")


def median_of(runs: list[dict[str, Any]], get: Callable[[dict[str, Any]], float]) -> float:
    return statistics.median(get(r) for r in runs)


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    return f"{v:.2f}{unit}" if v < 100 else f"{v:.0f}{unit}"


def verdict(ours: float, target: float | None, higher_is_better: bool = False) -> str:
    if target is None:
        return "—"
    ok = ours >= target if higher_is_better else ours <= target
    return "met" if ok else "NOT met"


def catalog_rows(n: int, db: str, runs: list[dict[str, Any]], base: dict[str, float] | None) -> list[Row]:
    """Rows for one (N, db). ``base``: the 10k SQLite latencies, for the "100k within 2x" targets."""
    bs = cat.backstage_figures(n) or {}
    rows: list[Row] = []
    tag = f"{n // 1000}k {'SQLite' if db == 'sqlite' else 'PostgreSQL'}"
    ingest = median_of(runs, lambda r: r["all_visible_s"])
    limit = LIMIT_INGEST_S.get((n, db))
    target = TARGET_INGEST_S.get((n, db))
    rows.append((f"{tag}: ingest until all visible (s)", fmt(ingest), fmt(bs.get("all_visible_s")),
                 fmt(limit), f"≤ {target}" if target else "—", verdict(ingest, target)))
    rows.append((f"{tag}: background work after ingest (s, search index + docs queue)",
                 fmt(median_of(runs, lambda r: r["background_after_ingest_s"])), "—", "—", "—", "—"))
    for label, _ in cat.REQUESTS:
        ours = median_of(runs, lambda r, lb=label: r["latency"][lb]["median_ms"])
        theirs = bs.get(label)
        if base is not None and label in base:
            tgt, tgt_s = 2 * base[label], f"≤ 2× 10k ({2 * base[label]:.2f})"
        elif theirs:
            tgt, tgt_s = theirs / 4, f"≤ ¼ Backstage ({theirs / 4:.2f})"
        else:
            tgt, tgt_s = None, "—"
        rows.append((f"{tag}: {label}, median ms", fmt(ours), fmt(theirs), "—", tgt_s, verdict(ours, tgt)))
    factors = {"by-name": 1.5, "by-query kind=component limit=50": 10}
    for label in runs[0]["throughput"]:
        ours = median_of(runs, lambda r, lb=label: r["throughput"][lb]["req_per_s"])
        theirs = bs.get("T " + label)
        tgt = theirs * factors[label] if theirs and label in factors and n == 10_000 else None
        rows.append((f"{tag}: {label}, 8 clients req/s", fmt(ours), fmt(theirs), "—",
                     f"≥ {factors[label]:g}× ({tgt:.0f})" if tgt else "—", verdict(ours, tgt, True)))
    rss = median_of(runs, lambda r: r["peak_rss_mib"])
    rss_ingest = median_of(runs, lambda r: r["peak_rss_after_ingest_mib"])
    tgt_rss = TARGET_RSS_MIB.get(n)
    rows.append((f"{tag}: peak RSS of the process tree, whole run (MiB)", fmt(rss), fmt(bs.get("peak_rss_mib")),
                 "—", f"≤ {tgt_rss}" if tgt_rss else "—", verdict(rss, tgt_rss)))
    rows.append((f"{tag}: peak RSS until all visible (MiB)", fmt(rss_ingest), "—", "—", "—", "—"))
    return rows


def run_catalog(n: int, db: str, repeat: int, seconds: float, settle_cap: float) -> list[dict[str, Any]]:
    runs = []
    for i in range(repeat):
        print(f"… catalog N={n} {db} run {i + 1}/{repeat}", file=sys.stderr, flush=True)
        runs.append(cat.run(n, db, seconds, settle_cap_s=settle_cap))
    return runs


def run_other(name: str, args: list[str], timeout: float) -> list[Row]:
    script = ROOT / args[0]
    if not script.exists():
        return [(f"{name}: bench/{args[0]}", "missing", "—", "—", "—", "—")]
    print(f"… {name}: {' '.join(args)}", file=sys.stderr, flush=True)
    try:
        p = subprocess.run([sys.executable, str(script), *args[1:]], capture_output=True, text=True,
                           timeout=timeout, cwd=ROOT.parent)
    except subprocess.TimeoutExpired:
        return [(f"{name}: bench/{args[0]}", f"timed out after {timeout:.0f} s", "—", "—", "—", "—")]
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1][:100]
        return [(f"{name}: bench/{args[0]}", f"failed (exit {p.returncode}): {last}", "—", "—", "—", "—")]
    rows: list[Row] = []
    for line in p.stdout.splitlines():
        line = line.strip().strip("|").strip()
        if not line or set(line) <= set("-| "):
            continue
        label, sep, value = line.partition(":")
        if not sep:
            label, value = line, ""
        rows.append((f"{name}: {label.strip()}"[:90], value.strip()[:70] or "(see label)", "—", "—",
                     f"see bench/{args[0]}", "—"))
    return rows or [(f"{name}: bench/{args[0]}", "ran, printed nothing", "—", "—", "—", "—")]


def print_table(rows: list[Row]) -> None:
    head = ("measure", "Greenroom", "Backstage", "limit", "target", "met")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(6)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="catalog 10k SQLite once, short phases")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the 10k catalog benchmark")
    ap.add_argument("--repeat-100k", type=int, default=1, help="runs of each 100k catalog benchmark")
    ap.add_argument("--no-others", action="store_true", help="only the catalog")
    ap.add_argument("--json", type=Path, help="also write the raw catalog results here")
    a = ap.parse_args()
    cat.WORK.mkdir(exist_ok=True)
    started = time.time()
    print(f"machine: {machine()}")
    print(f"date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
    raw: dict[str, Any] = {}
    rows: list[Row] = []
    if a.quick:
        configs = [(10_000, "sqlite", 1, 3.0, 20.0)]
    else:
        configs = [(10_000, "sqlite", a.repeat, 15.0, 120.0), (100_000, "sqlite", a.repeat_100k, 15.0, 120.0),
                   (100_000, "pg", a.repeat_100k, 15.0, 120.0)]
    base: dict[str, float] | None = None
    for n, db, repeat, seconds, settle in configs:
        try:
            runs = run_catalog(n, db, repeat, seconds, settle)
        except Exception as e:  # noqa: BLE001 - one failed configuration must not hide the others
            rows.append((f"{n // 1000}k {db}: catalog", f"failed: {type(e).__name__}: {e}"[:80], "—", "—", "—", "—"))
            continue
        raw[f"{n}-{db}"] = runs
        rows.extend(catalog_rows(n, db, runs, base if n != 10_000 else None))
        if n == 10_000 and db == "sqlite":
            base = {label: median_of(runs, lambda r, lb=label: r["latency"][lb]["median_ms"])
                    for label, _ in cat.REQUESTS}
    if not a.no_others:
        for name, full, quick in OTHERS:
            args = quick if a.quick else full
            if args is None:
                rows.append((f"{name}: bench/{full[0]}", "skipped in --quick", "—", "—", "—", "—"))
                continue
            rows.extend(run_other(name, args, 60 if a.quick else 900))
    print()
    print_table(rows)
    print(f"\n({time.time() - started:.0f} s; load average now {os.getloadavg()[0]:.2f})")
    if a.json:
        a.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()

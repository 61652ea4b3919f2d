"""`make bench`: every figure, each in its own process, then one table and bench/results.json.

``python -m bench.run`` runs them all; ``python -m bench.run tick latency`` only those named.
``BENCH_QUICK=1`` shrinks every size (a smoke run; the figures are then not the issue's).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from bench.common import QUICK, ROOT, Figure, print_table, setup_logging, write_results

logger = logging.getLogger("bench.run")

# name → (module, function): one process each, so memory figures start from a clean heap
# and a server left behind by one figure cannot slow the next.
GROUPS: Dict[str, Tuple[str, str]] = {
    "tick": ("bench.engine_figures", "tick_figures"),
    "memory": ("bench.engine_figures", "memory_figures"),
    "hub": ("bench.engine_figures", "hub_figures"),
    "triggers": ("bench.engine_figures", "trigger_figures"),
    "latency": ("bench.latency", "run"),
    "throughput": ("bench.throughput", "run"),
    "fanout": ("bench.fanout", "run"),
    "browser": ("bench.browser_toast", "run"),
    "inject": ("bench.inject", "run"),
    # Several replicas on a real redis-server (store: redis), as docs/design/cluster.md runs them.
    "cluster_latency": ("bench.cluster_latency", "run"),
    "cluster_throughput": ("bench.cluster_throughput", "run"),
    "cluster_streams": ("bench.cluster_streams", "run"),
    "cluster_failover": ("bench.cluster_failover", "run"),
}


def run_one(name: str, out: Path) -> None:
    module, function = GROUPS[name]
    run: Callable[[], List[Figure]] = getattr(importlib.import_module(module), function)
    out.write_text(json.dumps([f.to_dict() for f in run()]))


def main(argv: List[str]) -> int:
    setup_logging()
    if argv[:1] == ["--one"]:
        run_one(argv[1], Path(argv[2]))
        return 0
    names = argv or list(GROUPS)
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        print(f"unknown figure group(s) {unknown}; known: {list(GROUPS)}", file=sys.stderr)
        return 2
    figures: List[Figure] = []
    failed: List[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.json"
            logger.info("== %s", name)
            group_started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "bench.run", "--one", name, str(out)], cwd=ROOT, env=os.environ)
            if done.returncode != 0 or not out.exists():
                failed.append(name)
                logger.error("%s failed (exit %d)", name, done.returncode)
                continue
            for data in json.loads(out.read_text()):
                data.pop("ratio", None)
                figures.append(Figure(**data))
            logger.info("== %s done in %.0f s", name, time.monotonic() - group_started)
    meta = {
        "quick": QUICK, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.monotonic() - started),
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
    }
    write_results(figures, meta=meta)
    print()
    print_table(figures)
    print(f"\n{len(figures)} figures in {meta['seconds']} s{' (BENCH_QUICK: reduced sizes)' if QUICK else ''}; "
          f"written to {Path('bench/results.json')}")
    missed = [f.label for f in figures if f.met is False]
    if missed:
        print("missed targets: " + "; ".join(missed))
    if failed:
        print("failed groups: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

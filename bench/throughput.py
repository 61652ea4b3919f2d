"""Ingest throughput at saturation: the copilot's ``/events`` in `rasa run` vs a bare Sanic route.

Both are driven by the same client, wrk (Debian's, one thread on the other core), with the
same script (``ingest.lua``: a new PostHog event per request). Runs alternate between the
two servers so machine noise hits both; the figure is the median over the rounds.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from statistics import median
from typing import Dict, List, Optional

from bench.common import ROOT, Figure, setup_logging, sized
from bench.servers import start_bare_sanic, start_bench_rasa

logger = logging.getLogger("bench.throughput")
SCRIPT = ROOT / "bench" / "ingest.lua"
CONNECTIONS = 32


def wrk(url: str, seconds: int, *, script: Optional[Path] = SCRIPT) -> Dict[str, float]:
    """Saturate ``url`` for ``seconds``: POSTs from ``script`` (its done() prints BENCH_JSON),
    or plain GETs with no script, read from wrk's own summary."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: `make bench` installs Debian's wrk (scripts/install-wrk.sh)")
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[-1:-1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if script is None:
        rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
        non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
        socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
        return {"rps": rps, "errors": errors}
    line = next(l for l in out.splitlines() if l.startswith("BENCH_JSON "))
    data = json.loads(line[len("BENCH_JSON "):])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["errors"] = sum(v for k, v in data.items() if k.startswith("errors_"))
    return data


def run() -> List[Figure]:
    seconds = sized(8, 3)
    rounds = sized(5, 1)
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        workdir = Path(tmp)
        rasa = start_bench_rasa(workdir, proactive_overrides={"driver": {"tick_seconds": 5}})
        bare = start_bare_sanic(workdir / "bare.log")
        ours: List[Dict[str, float]] = []
        baseline: List[Dict[str, float]] = []
        rasa_get: List[Dict[str, float]] = []
        bare_get: List[Dict[str, float]] = []
        try:
            wrk(f"{rasa.proactive}/events", 2)  # warm-up: first requests import and allocate
            wrk(f"{bare.url}/events", 2)
            for _ in range(rounds):
                baseline.append(wrk(f"{bare.url}/events", seconds))
                ours.append(wrk(f"{rasa.proactive}/events", seconds))
                logger.info("ingest %.0f req/s, bare Sanic %.0f req/s", ours[-1]["rps"], baseline[-1]["rps"])
            # The ceiling Rasa's app sets before any copilot code runs: its own trivial route
            # (CORS middleware and all) against the bare app's equivalent.
            for _ in range(rounds):
                bare_get.append(wrk(f"{bare.url}/", seconds // 2, script=None))
                rasa_get.append(wrk(f"{rasa.url}/", seconds // 2, script=None))
                logger.info("GET /: rasa run %.0f req/s, bare Sanic %.0f req/s", rasa_get[-1]["rps"], bare_get[-1]["rps"])
        finally:
            rasa.stop()
            bare.stop()
    ours_rps = median(r["rps"] for r in ours)
    bare_rps = median(r["rps"] for r in baseline)
    ratio = paired_ratio(ours, baseline)
    return [Figure(
        id="throughput.ingest_rps", label="ingest throughput at saturation (/events)", value=ours_rps, unit="req/s",
        baseline=bare_rps, baseline_label="bare Sanic route", target="ratio ≥ 0.5", met=ratio >= 0.5,
        samples=len(ours), paired_ratio=ratio,
        detail={"rounds": ours, "baseline_rounds": baseline, "connections": CONNECTIONS, "seconds": seconds,
                "ratio_of_medians": ours_rps / bare_rps,
                "errors": sum(r["errors"] for r in ours), "baseline_errors": sum(r["errors"] for r in baseline),
                "p99_ms": median(r["p99_us"] for r in ours) / 1000},
    ), Figure(
        id="throughput.rasa_get_rps", label="ceiling: Rasa's own GET / (no copilot code)",
        value=median(r["rps"] for r in rasa_get), unit="req/s", baseline=median(r["rps"] for r in bare_get),
        baseline_label="bare Sanic GET /", samples=len(rasa_get), paired_ratio=paired_ratio(rasa_get, bare_get),
        detail={"rounds": rasa_get, "baseline_rounds": bare_get, "seconds": seconds // 2,
                "errors": sum(r["errors"] for r in rasa_get + bare_get)},
    )]


def paired_ratio(ours: List[Dict[str, float]], baseline: List[Dict[str, float]]) -> float:
    """The median over rounds of ours / baseline, each pair measured back to back."""
    return median(o["rps"] / b["rps"] for o, b in zip(ours, baseline))


if __name__ == "__main__":
    from bench.common import print_table

    setup_logging()
    print_table(run())

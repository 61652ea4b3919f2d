"""Event → toast latency across two replicas on Redis vs one in-memory `rasa run`.

Two `rasa run` replicas share one real redis-server (``store: redis``, docs/design/cluster.md).
The load generator (``loadgen.py``, its own process on loopback) sends every event to replica A
and holds every user's toast stream on replica B, so each toast crosses the cluster: A's unit
of work commits the offer and publishes it, B's fan-out reads it from Redis and sends the frame.
The baseline is the same load against one `rasa run` with the default in-memory store (ingest
and streams on that one process), measured in the same run. Every run gets fresh servers, so
no run inherits another's sessions.

Two loads, each against both:
- proportional: 25 % of the saturation rate of the bare Sanic route (``bench/bare_sanic.py``,
  ``wrk`` with ``ingest.lua`` on ``/events``, median of three short rounds in this run), so the
  load follows the machine's speed; the design's target is p99 ≤ 25 ms with no errors;
- fixed: 1,000 events/s, as ``bench/latency.py``.

The load generator reports its own CPU seconds per wall second over the load (1.0 = one core
busy); the figure ``cluster_latency.loadgen_cpu`` shows the largest, so a reader sees whether
the client could be the bottleneck. The servers' CPU (replicas, redis-server) over each run
is in the p50 figures' detail.

A load beyond the servers' capacity queues in the generator's connection pool, so the latency
then grows with the run. A run still going after ``4 × seconds + 60`` s is stopped: its
figures are n/a and all its toasts count as missing.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any, Dict, List, Tuple

from bench.common import ROOT, CpuMeter, Figure, Summary, setup_logging, sized
from bench.loadgen import measured_toasts
from bench.servers import redis_replicas, start_bare_sanic, start_bench_rasa
from bench.throughput import wrk

logger = logging.getLogger("bench.cluster_latency")
SHARE_OF_BARE = 0.25
FIXED_RATE = 1000.0
TARGET_P99_MS = 25.0
Runs = Dict[str, Dict[str, Dict[str, Any]]]  # load name → "in_memory" / "cluster" → load generator result


def run() -> List[Figure]:
    users = sized(1000, 200)
    seconds = sized(30, 8)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-latency-") as tmp:
        workdir = Path(tmp)
        bare_rps, bare_rounds = bare_saturation(workdir)
        loads = {"proportional": SHARE_OF_BARE * bare_rps, "fixed": FIXED_RATE}
        runs: Runs = {}
        for name, rate in loads.items():
            runs[name] = {
                "in_memory": in_memory_run(workdir / f"{name}-in-memory", users, rate, seconds),
                "cluster": cluster_run(workdir / f"{name}-cluster", users, rate, seconds),
            }
    figures: List[Figure] = []
    for name, rate in loads.items():
        figures += latency_figures(name, rate, users, seconds, runs[name], bare_rps, bare_rounds)
    figures += [errors_figure(runs), loadgen_figure(runs)]
    return figures


def bare_saturation(workdir: Path) -> Tuple[float, List[float]]:
    """The bare Sanic route's req/s at saturation: the median of three short wrk rounds."""
    bare = start_bare_sanic(workdir / "bare.log")
    try:
        wrk(f"{bare.url}/events", 2)  # warm-up
        rounds = [wrk(f"{bare.url}/events", sized(4, 2))["rps"] for _ in range(3)]
    finally:
        bare.stop()
    logger.info("bare Sanic saturates at %.0f req/s (rounds %s)", median(rounds), [round(r) for r in rounds])
    return median(rounds), rounds


def in_memory_run(workdir: Path, users: int, rate: float, seconds: float) -> Dict[str, Any]:
    """The load against one `rasa run` (default in-memory store): ingest and streams on it."""
    workdir.mkdir()
    rasa = start_bench_rasa(workdir)
    try:
        meter = CpuMeter({"rasa": rasa.process.pid})
        result = load(workdir, rasa.proactive, rasa.proactive, users, rate, seconds)
        result["server_cpu_share"] = meter.shares(result["load_wall_s"])
    finally:
        rasa.stop()
    log_run("in-memory", rate, result)
    return result


def cluster_run(workdir: Path, users: int, rate: float, seconds: float) -> Dict[str, Any]:
    """The load against two replicas on one redis-server: events to A, every stream on B."""
    workdir.mkdir()
    with redis_replicas(workdir, 2) as (redis_server, (ingest_replica, stream_replica)):
        meter = CpuMeter({"replica_a_ingest": ingest_replica.process.pid,
                          "replica_b_streams": stream_replica.process.pid, "redis_server": redis_server.process.pid})
        result = load(workdir, ingest_replica.proactive, stream_replica.proactive, users, rate, seconds)
        result["server_cpu_share"] = meter.shares(result["load_wall_s"])
    log_run("2 replicas on Redis", rate, result)
    return result


def load(workdir: Path, ingest_base: str, stream_base: str, users: int, rate: float, seconds: float) -> Dict[str, Any]:
    """One load-generator run. A load beyond the servers' capacity queues, and the run lasts until
    the last request is answered; past ``timeout`` it is stopped and every toast counts as missing."""
    out = workdir / "load.json"
    timeout = 4 * seconds + 60
    started = time.monotonic()
    try:
        subprocess.run(
            [sys.executable, "-m", "bench.loadgen", ingest_base, str(users), f"{rate:.1f}", str(seconds), str(out), stream_base],
            cwd=ROOT, env=os.environ, check=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        logger.error("the load generator was still running after %.0f s: stopped, its toasts count as missing", timeout)
        sent = int(rate * seconds)
        result: Dict[str, Any] = {
            "sent": sent, "achieved_rate": float("nan"), "latencies_ms": [], "ingest_ms": [], "request_errors": 0,
            "stream_errors": 0, "missing_toasts": measured_toasts(users, sent), "superseded_sessions": 0, "cpu_share": float("nan"),
            "load_wall_s": time.monotonic() - started, "timed_out": True,
            "error_examples": [f"load generator still running after {timeout:.0f} s (the servers fell behind): stopped"],
        }
    else:
        result = json.loads(out.read_text())
    result["errors"] = result["request_errors"] + result["stream_errors"] + result["missing_toasts"]
    return result


def log_run(what: str, rate: float, result: Dict[str, Any]) -> None:
    logger.info("%s at %.0f ev/s (achieved %.0f): event → toast %s; errors %d %s; load generator CPU %.2f; servers %s",
                what, rate, result["achieved_rate"], Summary.of(result["latencies_ms"]), result["errors"],
                result["error_examples"], result["cpu_share"], result["server_cpu_share"])


def run_detail(result: Dict[str, Any]) -> Dict[str, Any]:
    """What a figure's detail keeps of one load run (not the raw samples)."""
    return {
        "achieved_rate": result["achieved_rate"], "sent": result["sent"], "toasts": len(result["latencies_ms"]),
        "missing_toasts": result["missing_toasts"], "superseded_sessions": result["superseded_sessions"],
        "request_errors": result["request_errors"],
        "stream_errors": result["stream_errors"], "error_examples": result["error_examples"],
        "ingest_request_ms": Summary.of(result["ingest_ms"]).__dict__,
        "loadgen_cpu_share": round(result["cpu_share"], 3), "load_wall_s": round(result["load_wall_s"], 2),
        "server_cpu_share": result["server_cpu_share"], "timed_out": result.get("timed_out", False),
    }


def latency_figures(
    name: str, rate: float, users: int, seconds: float, pair: Dict[str, Dict[str, Any]],
    bare_rps: float, bare_rounds: List[float],
) -> List[Figure]:
    ours = Summary.of(pair["cluster"]["latencies_ms"])
    single = Summary.of(pair["in_memory"]["latencies_ms"])
    errors = pair["cluster"]["errors"]
    loadgen_cpu = max((r["cpu_share"] for r in pair.values() if r["cpu_share"] == r["cpu_share"]), default=float("nan"))
    what = f"{rate:.0f} ev/s ({SHARE_OF_BARE:.0%} of bare Sanic)" if name == "proportional" else f"{rate:.0f} ev/s"
    label = f"event → toast, 2 replicas on Redis (events to A, streams on B), {users} users at {what}"
    baseline_label = "one in-memory rasa run"
    detail: Dict[str, Any] = {
        "users": users, "rate": rate, "seconds": seconds, "cluster": run_detail(pair["cluster"]),
        "in_memory": run_detail(pair["in_memory"]),
        "loadgen_cpu_share_note": "load generator CPU s per wall s over the load, 1.0 = one core busy",
    }
    if name == "proportional":
        detail.update({"bare_sanic_rps": bare_rps, "bare_sanic_rounds": bare_rounds, "share_of_bare": SHARE_OF_BARE})
    p99_target: Dict[str, Any] = {}
    if name == "proportional":
        p99_target = {"target": f"≤ {TARGET_P99_MS:g} ms", "met": ours.p99 <= TARGET_P99_MS and errors == 0}
    return [
        Figure(id=f"cluster_latency.{name}.p50_ms", label=f"{label} (p50)", value=ours.p50, unit="ms",
               baseline=single.p50, baseline_label=baseline_label, samples=ours.n, detail=detail),
        Figure(id=f"cluster_latency.{name}.p95_ms", label=f"{label} (p95)", value=ours.p95, unit="ms",
               baseline=single.p95, baseline_label=baseline_label, samples=ours.n),
        Figure(id=f"cluster_latency.{name}.p99_ms", label=f"{label} (p99; load generator ≤ {loadgen_cpu:.0%} of a core)",
               value=ours.p99, unit="ms", baseline=single.p99, baseline_label=baseline_label, samples=ours.n,
               detail={"errors": errors, "loadgen_cpu_share": round(loadgen_cpu, 3)}, **p99_target),
    ]


def errors_figure(runs: Runs) -> Figure:
    errors = sum(pair["cluster"]["errors"] for pair in runs.values())
    return Figure(
        id="cluster_latency.errors", label="event → toast errors, 2 replicas on Redis (requests, streams, missing toasts)",
        value=errors, unit="", samples=sum(pair["cluster"]["sent"] for pair in runs.values()), target="0", met=errors == 0,
        detail={name: {"cluster": {k: pair["cluster"][k] for k in ("request_errors", "stream_errors", "missing_toasts",
                                                                    "superseded_sessions", "error_examples")},
                       "in_memory_errors": pair["in_memory"]["errors"]} for name, pair in runs.items()},
    )


def loadgen_figure(runs: Runs) -> Figure:
    shares = {f"{name}.{where}": round(result["cpu_share"], 3) for name, pair in runs.items() for where, result in pair.items()}
    measured = [share for share in shares.values() if share == share]  # a run stopped on its timeout has none
    return Figure(
        id="cluster_latency.loadgen_cpu", label="load generator CPU during the event → toast loads (busiest run)",
        value=100 * max(measured, default=float("nan")), unit="% of a core", samples=len(measured),
        detail={"cpu_share_by_run": shares,
                "note": "the generator is one asyncio process: near 100 % it, not the server, would set the pace"},
    )


if __name__ == "__main__":
    from bench.common import print_table

    setup_logging()
    print_table(run())

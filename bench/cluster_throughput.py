"""Ingest throughput at saturation of one replica of a cluster (``store: redis``) vs one in-memory process.

Two `rasa run` replicas share one real redis-server (docs/design/cluster.md: the offers, the
chat layer, Rasa's trackers and locks); wrk (one thread, 32 connections, ``ingest.lua``: a new
PostHog event per request) saturates ``/events`` of one of them. The baseline is a single
`rasa run` with the default in-memory store, driven by the same wrk and script, measured in
the same run: rounds alternate between the two (the in-memory process, then the replica),
and the ratio is the median of the paired ratios, as in ``bench/throughput.py``. The design's
target is ratio ≥ 0.6, with no error answers (a 503 from Redis is not throughput).

Redis shares the machine's two cores with the replica and wrk, so the redis-server's CPU
share during the redis rounds (utime + stime from /proc, per wall second of the round) is in
the figure's detail, beside the replica's.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from statistics import median
from typing import Any, Dict, List

from bench.common import CpuMeter, Figure, setup_logging, sized
from bench.servers import redis_replicas, start_bench_rasa
from bench.throughput import CONNECTIONS, paired_ratio, wrk

logger = logging.getLogger("bench.cluster_throughput")
TARGET_RATIO = 0.6
# As bench/throughput.py runs its server: the shipped 5 s driver tick.
DRIVER = {"driver": {"tick_seconds": 5}}


def run() -> List[Figure]:
    seconds = sized(8, 3)
    rounds = sized(5, 1)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-throughput-") as tmp:
        workdir = Path(tmp)
        single_dir = workdir / "in-memory"
        single_dir.mkdir()
        ours: List[Dict[str, Any]] = []
        baseline: List[Dict[str, float]] = []
        with redis_replicas(workdir, proactive_overrides=DRIVER) as (redis_server, replicas):
            single = start_bench_rasa(single_dir, proactive_overrides=DRIVER)
            replica = replicas[0]
            try:
                wrk(f"{single.proactive}/events", 2)  # warm-up: first requests import and allocate
                wrk(f"{replica.proactive}/events", 2)
                for _ in range(rounds):
                    baseline.append(wrk(f"{single.proactive}/events", seconds))
                    meter = CpuMeter({"redis_server": redis_server.process.pid, "replica": replica.process.pid})
                    result: Dict[str, Any] = dict(wrk(f"{replica.proactive}/events", seconds))
                    result["cpu_share"] = meter.shares()
                    ours.append(result)
                    logger.info("ingest on a redis replica %.0f req/s (%d errors; CPU share redis-server %.2f, replica %.2f), "
                                "in-memory %.0f req/s", result["rps"], result["errors"],
                                result["cpu_share"]["redis_server"], result["cpu_share"]["replica"], baseline[-1]["rps"])
            finally:
                single.stop()
    ours_rps = median(r["rps"] for r in ours)
    single_rps = median(r["rps"] for r in baseline)
    ratio = paired_ratio(ours, baseline)
    errors = sum(r["errors"] for r in ours)
    redis_cpu = median(r["cpu_share"]["redis_server"] for r in ours)
    return [Figure(
        id="cluster_throughput.ingest_rps", label="ingest throughput at saturation, one of 2 replicas on Redis (/events)",
        value=ours_rps, unit="req/s", baseline=single_rps, baseline_label="one in-memory rasa run",
        target=f"ratio ≥ {TARGET_RATIO:g}", met=ratio >= TARGET_RATIO and errors == 0, samples=len(ours), paired_ratio=ratio,
        detail={"rounds": ours, "baseline_rounds": baseline, "connections": CONNECTIONS, "seconds": seconds,
                "ratio_of_medians": ours_rps / single_rps, "errors": errors,
                "baseline_errors": sum(r["errors"] for r in baseline),
                "redis_server_cpu_share": redis_cpu,
                "replica_cpu_share": median(r["cpu_share"]["replica"] for r in ours),
                "cpu_share_note": "CPU seconds per wall second of each redis round (1.0 = one of the 2 cores)",
                "p99_ms": median(r["p99_us"] for r in ours) / 1000,
                "baseline_p99_ms": median(r["p99_us"] for r in baseline) / 1000},
    )]


if __name__ == "__main__":
    from bench.common import print_table

    setup_logging()
    print_table(run())

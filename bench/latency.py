"""Event → toast latency under load, against a real `rasa run`.

The load (``loadgen.py``) runs in its own process on loopback: 1,000 users with an SSE
stream each, 1,000 events/s in total for 30 s. This module starts the server, runs the
load, and turns the samples into p50/p95/p99 and an error count.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

from bench.common import ROOT, Figure, Summary, setup_logging, sized
from bench.servers import start_bench_rasa

logger = logging.getLogger("bench.latency")


def run() -> List[Figure]:
    users = sized(1000, 200)
    rate = sized(1000, 200)
    seconds = sized(30, 8)
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        workdir = Path(tmp)
        # The shipped 5 s driver tick runs throughout, as in production.
        rasa = start_bench_rasa(workdir)
        out = workdir / "load.json"
        try:
            subprocess.run(
                [sys.executable, "-m", "bench.loadgen", rasa.proactive, str(users), str(rate), str(seconds), str(out)],
                cwd=ROOT, env=os.environ, check=True, timeout=seconds + 120,
            )
        finally:
            rasa.stop()
        result = json.loads(out.read_text())
    latency = Summary.of(result["latencies_ms"])
    ingest = Summary.of(result["ingest_ms"])
    errors = result["request_errors"] + result["stream_errors"] + result["missing_toasts"]
    logger.info("event → toast: %s; errors %d (%s)", latency, errors, result["error_examples"])
    detail = {
        "users": users, "rate": rate, "seconds": seconds, "achieved_rate": result["achieved_rate"],
        "sent": result["sent"], "toasts": latency.n, "missing_toasts": result["missing_toasts"],
        "superseded_sessions": result["superseded_sessions"],
        "request_errors": result["request_errors"], "stream_errors": result["stream_errors"],
        "error_examples": result["error_examples"], "ingest_request_ms": ingest.__dict__,
    }
    label = f"event → toast, {users} users at {rate} ev/s"
    return [
        Figure(id="latency.p50_ms", label=f"{label} (p50)", value=latency.p50, unit="ms", samples=latency.n, detail=detail),
        Figure(id="latency.p95_ms", label=f"{label} (p95)", value=latency.p95, unit="ms", samples=latency.n),
        Figure(id="latency.p99_ms", label=f"{label} (p99)", value=latency.p99, unit="ms", samples=latency.n,
               target="≤ 50 ms", met=latency.p99 <= 50.0 and errors == 0),
        Figure(id="latency.errors", label="event → toast errors (requests, streams, missing toasts)", value=errors,
               unit="", samples=result["sent"], target="0", met=errors == 0),
    ]


if __name__ == "__main__":
    from bench.common import print_table

    setup_logging()
    print_table(run())

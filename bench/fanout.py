"""SSE fan-out: N concurrent toast streams held by one `rasa run`.

Two client processes hold the streams (``sse_clients.py``). Measured: the server's RSS per
open stream; the time from the first ingest request to an offer on every stream (each
user sends three saves, in batched ``/events`` requests); that no stream errs; and that
no subscriber is left once the clients disconnect.
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
from typing import List

import httpx

from bench.common import ROOT, Figure, Summary, rss_bytes, setup_logging, sized
from bench.servers import start_bench_rasa
from posthog_events import posthog_event

logger = logging.getLogger("bench.fanout")
CLIENT_PROCESSES = 2
USERS_PER_REQUEST = 250


def health(base: str) -> dict:
    return httpx.get(f"{base}/health", timeout=10).json()


def run() -> List[Figure]:
    streams = sized(10_000, 1_000)
    per_process = streams // CLIENT_PROCESSES
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        workdir = Path(tmp)
        rasa = start_bench_rasa(workdir, proactive_overrides={"driver": {"tick_seconds": 5}})
        pid = rasa.process.pid
        clients = []
        try:
            # Warm the ingest and stream paths before the baseline RSS is read.
            httpx.post(f"{rasa.proactive}/events", json=[posthog_event(ts=time.time(), user="warm", session="warm")], timeout=10)
            time.sleep(1.0)
            rss_idle = rss_bytes(pid)
            for p in range(CLIENT_PROCESSES):
                clients.append(subprocess.Popen(
                    [sys.executable, "-m", "bench.sse_clients", rasa.proactive, str(p * per_process), str(per_process),
                     "120", str(workdir / f"clients{p}.json")],
                    cwd=ROOT, env=os.environ, stdout=subprocess.PIPE, text=True,
                ))
            for client in clients:
                assert client.stdout is not None
                line = client.stdout.readline().strip()
                if line != "READY":
                    raise RuntimeError(f"an SSE client process failed before READY: {line!r}")
            open_streams = health(rasa.proactive)["subscribers"]
            time.sleep(1.0)
            rss_open = rss_bytes(pid)
            started = time.monotonic()
            now = time.time()
            with httpx.Client(timeout=60) as http:
                for first in range(0, streams, USERS_PER_REQUEST):
                    batch = [
                        posthog_event(ts=now - 3 + k, text="Save changes", user=f"fu{i}", session=f"fs{i}")
                        for i in range(first, min(first + USERS_PER_REQUEST, streams)) for k in range(3)
                    ]
                    http.post(f"{rasa.proactive}/events", json=batch).raise_for_status()
            ingest_done = time.monotonic()
            for client in clients:
                client.wait(timeout=300)
            results = [json.loads((workdir / f"clients{p}.json").read_text()) for p in range(CLIENT_PROCESSES)]
            deadline = time.monotonic() + 20
            left = health(rasa.proactive)["subscribers"]
            while left and time.monotonic() < deadline:
                time.sleep(0.5)
                left = health(rasa.proactive)["subscribers"]
            rss_closed = rss_bytes(pid)
        finally:
            for client in clients:
                if client.poll() is None:
                    client.kill()
            rasa.stop()
    arrivals = [t for r in results for t in r["arrivals"].values()]
    errors = [e for r in results for e in r["errors"]]
    delays_ms = [(t - started) * 1000 for t in arrivals]
    delivered = Summary.of(delays_ms)
    per_stream = (rss_open - rss_idle) / max(open_streams, 1)
    logger.info("fan-out: %d streams open, %d offers, last after %.0f ms, %d left, errors %s",
                open_streams, len(arrivals), delivered.max, left, errors[:3])
    detail = {"streams": streams, "open_streams": open_streams, "offers_received": len(arrivals), "errors": errors[:10],
              "rss_idle_mb": rss_idle / 2**20, "rss_open_mb": rss_open / 2**20, "rss_closed_mb": rss_closed / 2**20,
              "ingest_requests_ms": (ingest_done - started) * 1000, "delivery_ms": delivered.__dict__,
              "subscribers_left": left}
    ok = not errors and len(arrivals) == streams and left == 0
    return [
        Figure(id="fanout.bytes_per_stream", label=f"SSE memory per open stream ({streams // 1000}k streams)",
               value=per_stream, unit="B", samples=open_streams, detail=detail),
        Figure(id="fanout.all_delivered_ms", label=f"ingest → an offer on every one of {streams // 1000}k streams",
               value=delivered.max, unit="ms", samples=delivered.n),
        Figure(id="fanout.errors", label="fan-out errors + subscribers left after disconnect",
               value=len(errors) + (streams - len(arrivals)) + left, unit="", samples=streams, target="0", met=ok),
    ]


if __name__ == "__main__":
    from bench.common import print_table

    setup_logging()
    print_table(run())

"""SSE fan-out across a cluster: concurrent toast streams held by several `rasa run` replicas
(``store: redis``) sharing one real redis-server.

Each replica holds its share of the streams, opened by client processes of its own
(``sse_clients.py``, at most ``STREAMS_PER_CLIENT`` each: a process has the same open-file
limit as a replica). Then every user's three saves go out in batched ``/events`` requests,
alternately to the replicas (one request in flight per replica at a time), each batch to a
replica that does not hold those users' streams: every offer reaches its stream through Redis
pub/sub. The clients hold their streams until every stream has its offer, then all disconnect
at once. Measured: each replica's RSS per open stream; the time from the first ingest request
until every stream has its offer; errors and missing offers; and the streams left
``DISCONNECT_WAIT_S`` after the disconnect, in each replica's /health and in Redis presence
(the per-user counts the replicas keep in Redis). The detail also has each phase's peak of
open files per replica and of Redis clients, and the replicas' WARNING lines.

The issue's target is 50,000 streams on 2 replicas. One process here may not open more than
the hard open-file limit (``ulimit -Hn``, 20,000 on the bench machine, and not raisable
without CAP_SYS_RESOURCE), so each replica holds at most that less ``FD_MARGIN`` (its Redis
connections, the model, logs). The figure says the count actually reached. Sizes:
``BENCH_CLUSTER_STREAMS`` (total, 50,000 by default) and ``BENCH_CLUSTER_REPLICAS`` (2), e.g.
3 replicas to hold 50,000 under that limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import httpx
import redis

from bench.common import ROOT, Figure, Summary, raise_nofile, rss_bytes, setup_logging, sized
from bench.fanout import USERS_PER_REQUEST, health
from bench.servers import start_bench_replicas
from posthog_events import posthog_event
from rasa_server import RasaServer
from redis_server import start_redis

logger = logging.getLogger("bench.cluster_streams")

TARGET_STREAMS, TARGET_REPLICAS = 50_000, 2
FD_MARGIN = 2_000  # per replica: its Redis connections, the model, logs, listeners
PORT_MARGIN = 1_000  # ephemeral ports per replica address left to everything else
STREAMS_PER_CLIENT = 12_000
# Streams one client process has opening at once (see sse_clients.py): with at most two
# processes per replica, fewer than Sanic's accept backlog (100) wait on a replica.
MAX_OPENING = 40
INFLIGHT_PER_REPLICA = 1
DISCONNECT_WAIT_S = 60.0  # after every client disconnects, how long the streams may take to be gone


def requested_sizes() -> Tuple[int, int]:
    """(total streams, replicas): the environment's, else the issue's (smaller under BENCH_QUICK)."""
    total = int(os.environ.get("BENCH_CLUSTER_STREAMS") or sized(TARGET_STREAMS, 2_000))
    replicas = int(os.environ.get("BENCH_CLUSTER_REPLICAS") or TARGET_REPLICAS)
    if total < replicas or replicas < 1:
        raise ValueError(f"BENCH_CLUSTER_STREAMS={total} and BENCH_CLUSTER_REPLICAS={replicas}: need streams ≥ replicas ≥ 1")
    return total, replicas


def streams_one_process_can_hold() -> int:
    """Sockets one replica can hold: the hard open-file limit (which the bench lifts the soft one
    to) and the ephemeral ports towards one address, each less a margin."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    low, high = (int(p) for p in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    by_fds = hard - FD_MARGIN if hard != resource.RLIM_INFINITY else 10**9
    return max(1, min(by_fds, high - low + 1 - PORT_MARGIN))


def split(total: int, replicas: int, cap: int) -> List[int]:
    """Streams per replica: an even share of ``total``, at most ``cap`` each."""
    return [min(cap, total // replicas + (1 if k < total % replicas else 0)) for k in range(replicas)]


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Peaks:
    """Samples the replicas' open files and Redis's clients every half second, keeping each
    phase's peaks (``phase`` is set as the run goes)."""

    def __init__(self, pids: List[int], redis_port: int) -> None:
        self.pids = pids
        self.phase = "opening"
        self.fds: Dict[str, List[int]] = {}
        self.redis_clients: Dict[str, int] = {}
        self._client = redis.Redis(port=redis_port, socket_timeout=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peaks", daemon=True)

    def __enter__(self) -> "Peaks":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)
        self._client.close()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            phase = self.phase
            fds = self.fds.setdefault(phase, [0] * len(self.pids))
            self.fds[phase] = [max(old, fd_count(pid)) for old, pid in zip(fds, self.pids)]
            try:
                clients = int(self._client.info("clients")["connected_clients"])
                self.redis_clients[phase] = max(self.redis_clients.get(phase, 0), clients)
            except redis.RedisError:
                pass


def log_problems(replica: RasaServer) -> Dict[str, int]:
    """The replica's WARNING and ERROR lines, counted by their text with numbers as N (the
    start-up warnings about demo settings left out)."""
    counts: Dict[str, int] = {}
    for line in replica.log().splitlines():
        level = next((lv for lv in (" WARNING ", " ERROR ", " CRITICAL ") if lv in line), None)
        if level is None or "unsafe for production" in line:
            continue
        text = line.split(level, 1)[1].strip()
        key = (level.strip() + " " + re.sub(r"\d+", "N", text))[:160]
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:8])


def subscribers(replica: RasaServer) -> Optional[int]:
    """The replica's open streams (/health), or None while it does not answer within 10 s."""
    try:
        return int(health(replica.proactive)["subscribers"])
    except httpx.HTTPError as e:
        logger.info("replica :%d: /health did not answer (%s)", replica.port, type(e).__name__)
        return None


def presence_left(client: "redis.Redis[str]") -> Tuple[int, List[str]]:
    """Open streams Redis still counts, over every user and replica (presence hashes), and
    some of the users still counted, with their counts."""
    total = 0
    users: List[str] = []
    keys = list(client.scan_iter(match="proactive:streams:*", count=1000))
    for first in range(0, len(keys), 1000):
        chunk = keys[first:first + 1000]
        with client.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.hvals(key)
            for key, values in zip(chunk, pipe.execute()):
                counted = sum(int(v) for v in values)
                total += counted
                if counted and len(users) < 10:  # the user, and its count per replica id
                    users.append(f"{key.rsplit(':', 1)[-1].rstrip('}')} {client.hgetall(key)}")
    return total, users


async def ingest(replicas: List[RasaServer], ranges: List[range]) -> Tuple[List[float], List[str]]:
    """Three saves per user, USERS_PER_REQUEST users a request. The batches alternate between the
    replicas, each sent to a replica that does not hold its users' streams; each replica gets
    INFLIGHT_PER_REPLICA requests at once. Returns the request times (ms) and the errors."""
    queues: List[List[List[int]]] = [[] for _ in replicas]
    for holder, users in enumerate(ranges):
        for j, first in enumerate(range(users.start, users.stop, USERS_PER_REQUEST)):
            others = len(replicas) - 1
            target = (holder + 1 + j % others) % len(replicas) if others else holder
            queues[target].append(list(range(first, min(first + USERS_PER_REQUEST, users.stop))))
    durations: List[float] = []
    errors: List[str] = []

    async def send(replica: RasaServer, queue: List[List[int]], http: httpx.AsyncClient) -> None:
        while queue:
            users = queue.pop(0)
            now = time.time()
            body = [posthog_event(ts=now - 3 + k, text="Save changes", user=f"fu{i}", session=f"fs{i}")
                    for i in users for k in range(3)]
            started = time.monotonic()
            try:
                response = await http.post(f"{replica.proactive}/events", json=body)
                if response.status_code != 200:
                    errors.append(f"ingest on :{replica.port}: HTTP {response.status_code} {response.text[:200]}")
            except httpx.HTTPError as e:
                errors.append(f"ingest on :{replica.port}: {type(e).__name__}: {e}")
            durations.append((time.monotonic() - started) * 1000)

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=None)) as http:
        await asyncio.gather(*(send(replica, queue, http) for replica, queue in zip(replicas, queues)
                               for _ in range(INFLIGHT_PER_REPLICA)))
    return durations, errors


def run() -> List[Figure]:
    raise_nofile()
    requested, replica_count = requested_sizes()
    cap = streams_one_process_can_hold()
    per_replica = split(requested, replica_count, cap)
    streams = sum(per_replica)
    if streams < requested:
        logger.warning("%d streams requested on %d replicas; %d per replica at most (open-file limit %d less %d): %d in all",
                       requested, replica_count, cap, resource.getrlimit(resource.RLIMIT_NOFILE)[1], FD_MARGIN, streams)
    starts = [sum(per_replica[:k]) for k in range(replica_count)]
    ranges = [range(start, start + count) for start, count in zip(starts, per_replica)]
    wait_s = sized(480, 180)  # per client process, from its READY: the ingest and every offer
    subscribe_s = sized(480, 180)
    clients: List["subprocess.Popen[str]"] = []
    outputs: List[Path] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-streams-") as tmp:
        workdir = Path(tmp)
        redis_server = start_redis(workdir)
        replicas: List[RasaServer] = []
        try:
            replicas = start_bench_replicas(redis_server, workdir, replica_count)
            pids = [r.process.pid for r in replicas]
            shared = redis.Redis(port=redis_server.port, decode_responses=True)
            # Warm the ingest and stream paths before the baseline RSS is read.
            for replica in replicas:
                httpx.post(f"{replica.proactive}/events", json=[posthog_event(ts=time.time(), user="warm", session="warm")],
                           timeout=10).raise_for_status()
            time.sleep(1.0)
            rss_idle = [rss_bytes(pid) for pid in pids]
            fds_idle = [fd_count(pid) for pid in pids]
            redis_idle = int(shared.info("memory")["used_memory"])
            with Peaks(pids, redis_server.port) as peaks:
                opening_started = time.monotonic()
                for replica, users in zip(replicas, ranges):
                    processes = math.ceil(len(users) / STREAMS_PER_CLIENT)
                    for p in range(processes):
                        share = users[p * len(users) // processes:(p + 1) * len(users) // processes]
                        out = workdir / f"clients-{replica.port}-{p}.json"
                        outputs.append(out)
                        clients.append(subprocess.Popen(
                            [sys.executable, "-m", "bench.sse_clients", replica.proactive, str(share.start), str(len(share)),
                             str(wait_s), str(out), "--max-opening", str(MAX_OPENING), "--subscribe-s", str(subscribe_s),
                             "--hold"],
                            cwd=ROOT, env=os.environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                        ))
                for client in clients:
                    assert client.stdout is not None
                    line = client.stdout.readline().strip()
                    if line != "READY":
                        raise RuntimeError(f"an SSE client process failed before READY: {line!r}")
                opening_s = time.monotonic() - opening_started
                open_streams = [int(health(r.proactive)["subscribers"]) for r in replicas]
                logger.info("%d streams open (%s) in %.0f s by %d client processes", sum(open_streams), open_streams,
                            opening_s, len(clients))
                time.sleep(1.0)
                rss_open = [rss_bytes(pid) for pid in pids]
                fds_open = [fd_count(pid) for pid in pids]
                redis_open = int(shared.info("memory")["used_memory"])
                peaks.phase = "ingest requests"
                started = time.monotonic()
                durations, ingest_errors = asyncio.run(ingest(replicas, ranges))
                ingest_done = time.monotonic()
                peaks.phase = "delivery"
                for client in clients:  # every stream has its offer (or its wait is over)
                    assert client.stdout is not None
                    client.stdout.readline()
                # Every client disconnects at once: 'streams left' is what that leaves behind.
                peaks.phase = "disconnect"
                disconnected = time.monotonic()
                for client in clients:
                    assert client.stdin is not None
                    try:
                        client.stdin.write("\n")
                        client.stdin.close()
                    except BrokenPipeError:
                        pass
                for client in clients:
                    client.wait(timeout=120)
                results = [json.loads(out.read_text()) for out in outputs]
                # A minute: a dozen of the replicas' 5 s beats, which heal presence.
                deadline = time.monotonic() + DISCONNECT_WAIT_S
                left = [subscribers(r) for r in replicas]
                while any(n != 0 for n in left) and time.monotonic() < deadline:
                    time.sleep(0.5)
                    left = [subscribers(r) for r in replicas]
                left_cleared_s = None if any(n != 0 for n in left) else time.monotonic() - disconnected
                presence, presence_users = presence_left(shared)
                while presence and time.monotonic() < deadline:
                    time.sleep(0.5)
                    presence, presence_users = presence_left(shared)
                presence_cleared_s = None if presence else time.monotonic() - disconnected
            rss_closed = [rss_bytes(pid) for pid in pids]
            fds_closed = [fd_count(pid) for pid in pids]
            rejected = int(shared.info("stats")["rejected_connections"])  # Redis at maxclients
            shared.close()
            warnings = [log_problems(r) for r in replicas]
        finally:
            for client in clients:
                if client.poll() is None:
                    client.kill()
                    client.wait(5)
            for replica in replicas:
                replica.stop()
            redis_server.stop()
    arrivals = [t for r in results for t in r["arrivals"].values()]
    errors = ingest_errors + [e for r in results for e in r["errors"]]
    delivered = Summary.of([(t - started) * 1000 for t in arrivals])
    reached = sum(open_streams)
    per_stream = [(o - i) / max(n, 1) for o, i, n in zip(rss_open, rss_idle, open_streams)]
    missing = streams - len(arrivals)
    unanswered = sum(n is None for n in left)
    left_streams = sum(n or 0 for n in left)
    left_behind = left_streams + unanswered + presence
    logger.info("cluster fan-out: %d streams open on %d replicas, %d offers, last after %.0f ms, %d left (%d in Redis: %s), "
                "errors %s", reached, replica_count, len(arrivals), delivered.max, left_streams, presence, presence_users, errors[:3])
    mb = 2**20
    detail: Dict[str, Any] = {
        "requested_streams": requested, "replicas": replica_count, "streams_per_replica_cap": cap,
        "open_file_hard_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1], "fd_margin": FD_MARGIN,
        "planned_per_replica": per_replica, "open_per_replica": open_streams, "client_processes": len(clients),
        "opening_s": opening_s, "bytes_per_stream_per_replica": per_stream,
        "rss_idle_mb": [r / mb for r in rss_idle], "rss_open_mb": [r / mb for r in rss_open],
        "rss_closed_mb": [r / mb for r in rss_closed],
        "fds_idle": fds_idle, "fds_open": fds_open, "fds_closed": fds_closed, "fds_peak": peaks.fds,
        "redis_clients_peak": peaks.redis_clients, "redis_rejected_connections": rejected, "replica_warnings": warnings,
        "redis_used_memory_mb": {"idle": redis_idle / mb, "streams_open": redis_open / mb},
        "offers_received": len(arrivals), "missing_offers": missing, "errors": errors[:10], "error_count": len(errors),
        "ingest_requests": Summary.of(durations).__dict__, "ingest_s": ingest_done - started,
        "delivery_ms": delivered.__dict__, "subscribers_left_per_replica": left, "presence_left_in_redis": presence,
        "subscribers_cleared_after_s": left_cleared_s, "presence_cleared_after_s": presence_cleared_s,
        "presence_left_users": presence_users, "offers_across_replicas": "all (each batch went to a replica not holding its users' streams)"
        if replica_count > 1 else "none (one replica)",
    }
    on = f"{reached:,} streams on {replica_count} replicas"
    return [
        Figure(id="cluster_streams.streams", label=f"cluster: concurrent toast streams held ({on})", value=reached,
               unit="", samples=reached, detail=detail, target=f"{TARGET_STREAMS:,} on {TARGET_REPLICAS} replicas",
               met=reached >= TARGET_STREAMS and replica_count <= TARGET_REPLICAS),
        Figure(id="cluster_streams.bytes_per_stream", label=f"cluster: SSE memory per open stream, worst replica ({on})",
               value=max(per_stream), unit="B", samples=reached,
               detail={"per_replica": per_stream, "open_per_replica": open_streams}),
        Figure(id="cluster_streams.all_delivered_ms", label=f"cluster: ingest → an offer on every one of {on}",
               value=delivered.max if not missing else float("nan"), unit="ms", samples=delivered.n,
               detail={"delivery_ms": delivered.__dict__, "missing_offers": missing}),
        Figure(id="cluster_streams.errors", label="cluster fan-out errors + missing offers", value=len(errors) + missing,
               unit="", samples=streams, target="0", met=not errors and not missing,
               detail={"errors": errors[:10], "missing_offers": missing}),
        Figure(id="cluster_streams.left_after_disconnect",
               label=f"cluster: streams left {DISCONNECT_WAIT_S:.0f} s after every client disconnects (/health + Redis presence)",
               value=left_behind, unit="", samples=reached, target="0", met=left_behind == 0,
               detail={"subscribers_left_per_replica": left, "health_unanswered": unanswered,
                       "presence_left_in_redis": presence, "presence_left_users": presence_users,
                       "redis_clients_peak": peaks.redis_clients, "redis_rejected_connections": rejected}),
    ]


if __name__ == "__main__":
    from bench.common import print_table

    setup_logging()
    print_table(run())

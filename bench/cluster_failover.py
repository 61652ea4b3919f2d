"""Failover: the replica holding a toast stream is killed (SIGKILL) while offers keep firing.

nginx (the project's cluster/nginx.conf.template) in front of two `rasa run` replicas
(``store: redis``, the shipped 15 s stream heartbeat) and a real redis-server, as
tests/integration/test_cluster_failover.py runs them. One user's toast stream goes through
nginx, read as a browser's EventSource reads it: on a dropped stream it waits the server's
``retry:`` (3 s) and reconnects through nginx with ``Last-Event-ID``, the ``id:`` of the last
frame it got. Meanwhile a new PostHog session of three saves goes through nginx every
``PACE_S`` (caps lifted as ``start_bench_rasa`` does), so each session should fire one offer.
A session whose request failed (nginx answers 502 for a POST the killed replica had taken)
is sent again with the same event ids until accepted; the server counts a retried event once.

After a few offers the replica holding the stream (the one whose /health counts a
subscriber) is killed, the firing goes on for ``AFTER_KILL_S``, then, once the stream has
caught up, each round counts offers fired (sessions accepted; cross-checked with the
cluster's funnel, ``stage:fired``, and the replicas' "proactive trigger firing" log lines),
received, lost (a fired session whose offer never arrived) and duplicated (an offer id
received twice). Also: the time from the kill until the client notices, until it is
subscribed again, and until the reconnected stream delivers its first frame. Each round kills
one replica; the next round starts it again (a new replica, and nginx in front of the new
pair), so the stream's replica is in turn one that has run since the start and a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import aiohttp
import httpx

from bench.common import Figure, setup_logging, sized
from bench.servers import start_bench_replicas
from clients import funnel_counts, stream_url, three_saves
from nginx_server import NginxServer, start_nginx
from rasa_server import RasaServer
from redis_server import start_redis

logger = logging.getLogger("bench.cluster_failover")

PACE_S = 0.25  # a new session (three saves) this often
OFFERS_BEFORE = 3  # offers the stream has received when its replica is killed
AFTER_KILL_S = 8.0  # firing goes on this long after the kill (the reconnect waits retry: 3 s)
SETTLE_S = 15.0  # after the last session, how long the stream may take to catch up
RETRY_GIVE_UP_S = 20.0  # a session not accepted by then is reported, not counted as fired
TRIGGER = "bulk_edit_opportunity"


@dataclass
class EventSource:
    """An SSE client that reconnects like a browser's EventSource: after a drop it waits the
    server's ``retry:`` and sends the last ``id:`` it saw as ``Last-Event-ID``."""

    base: str
    user: str
    frames: List[Tuple[float, Dict[str, Any]]] = field(default_factory=list)  # (monotonic, offer)
    subscribed_at: List[float] = field(default_factory=list)  # each connection's "retry:" line
    dropped_at: List[float] = field(default_factory=list)
    drop_reasons: List[str] = field(default_factory=list)
    last_event_id: Optional[str] = None
    retry_s: float = 3.0
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)) as http:
            while True:
                headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
                try:
                    async with http.get(stream_url(self.base, self.user), headers=headers) as response:
                        if response.status != 200:
                            raise RuntimeError(f"HTTP {response.status}: {(await response.text())[:200]}")
                        await self._read(response)
                    self.drop_reasons.append("closed")
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    self.drop_reasons.append(f"{type(e).__name__}: {e}")
                self.dropped_at.append(time.monotonic())
                await asyncio.sleep(self.retry_s)

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        frame: Dict[str, str] = {}
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("retry: "):
                self.retry_s = int(line[len("retry: "):]) / 1000
                self.subscribed_at.append(time.monotonic())
                self.subscribed.set()
            elif line == "":
                if frame.get("event") == "proactive":
                    self.frames.append((time.monotonic(), json.loads(frame["data"])))
                if "id" in frame:
                    self.last_event_id = frame["id"]
                frame = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                frame[key] = value


@dataclass
class Round:
    user: str
    accepted: List[str] = field(default_factory=list)  # sessions whose events were accepted
    unaccepted: List[str] = field(default_factory=list)
    failed_requests: List[str] = field(default_factory=list)


async def fire(balancer: NginxServer, state: Round, stop: asyncio.Event) -> None:
    """A new session of three saves every PACE_S through nginx until ``stop``; a failed request
    is sent again, same event ids, until accepted (or RETRY_GIVE_UP_S)."""
    async with httpx.AsyncClient(timeout=5) as http:
        n = 0
        while not stop.is_set():
            began = time.monotonic()
            session = f"{state.user}-s{n}"
            events = three_saves(state.user, session)
            while True:
                try:
                    response = await http.post(f"{balancer.proactive}/events", json=events)
                    if response.status_code == 200:
                        state.accepted.append(session)
                        break
                    state.failed_requests.append(f"{session}: HTTP {response.status_code}")
                except httpx.HTTPError as e:
                    state.failed_requests.append(f"{session}: {type(e).__name__}: {e}")
                if time.monotonic() - began > RETRY_GIVE_UP_S:
                    state.unaccepted.append(session)
                    break
                await asyncio.sleep(0.1)
            n += 1
            await asyncio.sleep(max(0.0, PACE_S - (time.monotonic() - began)))


def subscribers(replica: RasaServer) -> int:
    return int(httpx.get(f"{replica.proactive}/health", timeout=5).json()["subscribers"])


def fired_in_logs(replicas: List[RasaServer], user: str) -> int:
    """The replicas' "proactive trigger firing" lines for ``user`` (a unit retried after a lost
    race repeats its lines: an upper bound)."""
    return sum(line.endswith(f"user={user}") for r in replicas for line in r.log().splitlines()
               if "proactive trigger firing" in line)


async def one_round(replicas: List[RasaServer], balancer: NginxServer, number: int) -> Dict[str, Any]:
    fired_before = funnel_counts(replicas[0].proactive, TRIGGER)["stages"]["fired"]  # the cluster's count, in Redis
    state = Round(user=f"failover-{number}-{uuid.uuid4().hex[:6]}")
    source = EventSource(balancer.proactive, state.user)
    reading = asyncio.create_task(source.run())
    stop = asyncio.Event()
    firing: Optional["asyncio.Task[None]"] = None
    try:
        await asyncio.wait_for(source.subscribed.wait(), 30)
        firing = asyncio.create_task(fire(balancer, state, stop))
        deadline = time.monotonic() + 30
        while len(source.frames) < OFFERS_BEFORE:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(source.frames)} offers on the stream before the kill")
            await asyncio.sleep(0.02)
        counts = [await asyncio.to_thread(subscribers, r) for r in replicas]
        holders = [r for r, c in zip(replicas, counts) if c > 0]
        if len(holders) != 1:
            raise RuntimeError(f"the stream's replica is not clear: subscribers {counts}")
        holder = holders[0]
        await asyncio.sleep(random.uniform(0, PACE_S))  # anywhere in a session's request, or between two
        holder.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await asyncio.to_thread(holder.process.wait, 10)
        logger.info("round %d: killed replica :%d (pid %d) after %d offers", number, holder.port,
                    holder.process.pid, len(source.frames))
        await asyncio.sleep(AFTER_KILL_S)
        stop.set()
        await firing
        sessions = set(state.accepted)
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and not sessions <= {f["session_id"] for _, f in source.frames}:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # a late duplicate would arrive now
    finally:
        stop.set()
        for task in (firing, reading):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (firing, reading) if t is not None), return_exceptions=True)
    survivor = next(r for r in replicas if r is not holder)
    funnel_fired = funnel_counts(survivor.proactive, TRIGGER)["stages"]["fired"] - fired_before
    ids = [f["offer_id"] for _, f in source.frames]
    received_sessions = {f["session_id"] for _, f in source.frames}
    lost = sorted(sessions - received_sessions)
    duplicated = len(ids) - len(set(ids))
    after = [t for t, _ in source.frames if t > killed_at]
    notice = next((t for t in source.dropped_at if t >= killed_at), None)
    back = next((t for t in source.subscribed_at if t > killed_at), None)
    again = next((t for t in after if back is not None and t >= back), None)
    result = {
        "user": state.user, "killed_port": holder.port,
        "fired": len(sessions), "received": len(ids), "lost": len(lost), "lost_sessions": lost[:10],
        "duplicated": duplicated, "offers_before_kill": len(ids) - len(after),
        "received_not_accepted": sorted(received_sessions - sessions)[:10],
        "funnel_fired": funnel_fired, "log_firing_lines": fired_in_logs(replicas, state.user),
        "unaccepted_sessions": state.unaccepted, "failed_requests": len(state.failed_requests),
        "failed_request_examples": state.failed_requests[:5], "drops": source.drop_reasons[:5],
        "notice_ms": None if notice is None else (notice - killed_at) * 1000,
        "reconnect_ms": None if back is None else (back - killed_at) * 1000,
        "delivers_again_ms": None if again is None else (again - killed_at) * 1000,
        "retry_s": source.retry_s,
    }
    logger.info("round %d: %s", number, {k: v for k, v in result.items() if k not in ("lost_sessions", "drops")})
    return result


def run() -> List[Figure]:
    rounds = sized(5, 1)
    results: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-failover-") as tmp:
        workdir = Path(tmp)
        redis_server = start_redis(workdir, appendonly=True)
        replicas: List[RasaServer] = []
        balancer: Optional[NginxServer] = None
        try:
            replicas = start_bench_replicas(redis_server, workdir, 2)
            for number in range(rounds):
                if number:
                    # The killed replica starts again (a new one, on a new port), nginx in front of the pair.
                    alive = [r for r in replicas if r.process.poll() is None]
                    restarted = start_bench_replicas(redis_server, workdir, 1)
                    # nginx's readiness check takes the first upstream and the stream the next:
                    # the stream's replica is the long-running one and a fresh one in turn.
                    replicas = restarted + alive if number % 2 else alive + restarted
                if balancer is not None:
                    balancer.stop()
                prefix = workdir / f"nginx-{number}"
                prefix.mkdir(parents=True)
                balancer = start_nginx(prefix, [f"127.0.0.1:{r.port}" for r in replicas])
                results.append(asyncio.run(one_round(replicas, balancer, number)))
        finally:
            if balancer is not None:
                balancer.stop()
            for replica in replicas:
                replica.stop()
            redis_server.stop()
    fired = sum(r["fired"] for r in results)
    lost = sum(r["lost"] for r in results)
    duplicated = sum(r["duplicated"] for r in results)
    unaccepted = sum(len(r["unaccepted_sessions"]) for r in results)
    funnel_mismatch = sum(r["funnel_fired"] != r["fired"] for r in results)
    back = [r["delivers_again_ms"] for r in results]
    reconnect = [r["reconnect_ms"] for r in results]
    complete = all(v is not None for v in back + reconnect)

    def spread(values: List[Optional[float]]) -> Tuple[float, float]:
        known = [v for v in values if v is not None]
        return (statistics.median(known), max(known)) if known else (float("nan"), float("nan"))

    back_median, back_max = spread(back)
    reconnect_median, reconnect_max = spread(reconnect)
    detail = {"rounds": results, "pace_s": PACE_S, "after_kill_s": AFTER_KILL_S, "fired": fired,
              "unaccepted_sessions": unaccepted, "rounds_where_funnel_disagrees": funnel_mismatch}
    label = f"{rounds} round{'s' if rounds > 1 else ''}, {fired} offers fired"
    ok = unaccepted == 0 and funnel_mismatch == 0 and complete and fired > 0
    return [
        Figure(id="cluster_failover.lost", label=f"failover: offers lost ({label})", value=lost, unit="",
               samples=fired, target="0", met=lost == 0 and ok, detail=detail),
        Figure(id="cluster_failover.duplicated", label=f"failover: offers duplicated ({label})", value=duplicated,
               unit="", samples=fired, target="0", met=duplicated == 0 and ok),
        Figure(id="cluster_failover.delivers_again_ms",
               label=f"failover: time until the stream delivers again (median; max {back_max:,.0f} ms; "
                     f"incl. the {max(r['retry_s'] for r in results):g} s retry: wait)",
               value=back_median, unit="ms", samples=len(results),
               detail={"median_ms": back_median, "max_ms": back_max, "per_round_ms": back}),
        Figure(id="cluster_failover.reconnect_ms",
               label=f"failover: time until the stream is subscribed again (median; max {reconnect_max:,.0f} ms)",
               value=reconnect_median, unit="ms", samples=len(results),
               detail={"median_ms": reconnect_median, "max_ms": reconnect_max, "per_round_ms": reconnect,
                       "notice_ms": [r["notice_ms"] for r in results]}),
    ]


if __name__ == "__main__":
    from bench.common import print_table

    setup_logging()
    print_table(run())

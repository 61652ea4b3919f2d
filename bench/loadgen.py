"""The load generator for the event → toast figure, run in its own process.

``N`` simulated users each hold an SSE stream and send posthog-js capture requests (gzip
envelope, one event per request, as the app's posthog-js does) at ``rate`` events/s in
total. Each user repeats a four-event cycle in a fresh PostHog session — a pageview of
/projects and three "Save changes" — so every third save should bring a toast; the figure
is the time from sending that save's request to that toast's SSE frame arriving.

Users take turns, one event each, and user ``i`` starts its cycle at step ``i % 4``, so at any
moment a quarter of the events are third saves, as with users who act independently. (Started
in step, all users sent their third saves in the same quarter of each round: offers came in
bursts at four times their mean rate, and the servers' queues during the bursts, not the
load's mean, set the latency.) A user's first cycle is then partial: its events are sent, but
its third save is not measured.

The requests and streams use the lean client in ``bench/raw_http.py``: the generator shares
the cores with the servers it measures, and with aiohttp it needed most of a core at 2,000
events/s.

A third save whose toast never came is ``missing``, unless the server answered the user's next
session's first event before that save: the engine evaluates a user's latest session only
(SPEC §3, "Driver"), so a save that arrives after the next
session began is stored but brings no offer. That happens only when the server is behind
(requests of one user overtake each other on the generator's connections) and is counted apart,
as ``superseded``.

Run: ``python -m bench.loadgen BASE_URL USERS RATE SECONDS OUT.json [STREAM_BASE_URL]``: the
streams go to STREAM_BASE_URL when given (another replica of a cluster), else to BASE_URL. The
output also holds the generator's own CPU use over the load (``cpu_share``: CPU seconds per wall
second, 1.0 = one core busy), so a figure can show the generator was not the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import zlib
from typing import Any, Dict, List, Optional, Tuple

from bench.common import raise_nofile
from bench.raw_http import KeepAlivePool, ProtocolError, SseStream, open_sse, post_request
from clients import stream_url
from posthog_events import PROJECT_KEY, iso, posthog_event

CYCLE = ("$pageview", "Save changes", "Save changes", "Save changes")
GRACE_S = 5.0  # how long a toast may take before it counts as missing
INGEST_CONNECTIONS = 64  # keep-alive connections for the events, as a busy set of browsers would hold


def cycle_step(user_index: int, n: int) -> Tuple[int, int, bool]:
    """User ``user_index``'s event ``n``: its cycle, its step in the cycle, and whether it is a
    third save whose toast is measured (a first cycle that started mid-way is not the story)."""
    phase = user_index % len(CYCLE)
    cycle, step = divmod(n + phase, len(CYCLE))
    return cycle, step, step == len(CYCLE) - 1 and (cycle > 0 or phase == 0)


def measured_toasts(users: int, total: int) -> int:
    """How many toasts a run of ``total`` events over ``users`` users measures."""
    return sum(cycle_step(j % users, j // users)[2] for j in range(total))


def gzipped(data: bytes) -> bytes:
    """gzip format, as ``gzip.compress`` makes it, without its file object per call."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


class LoadRun:
    def __init__(self, base: str, users: int, rate: float, seconds: float, stream_base: Optional[str] = None) -> None:
        self.base = base
        self.stream_base = stream_base or base
        self.users = users
        self.rate = rate
        self.seconds = seconds
        self.third_save_sent: Dict[str, float] = {}  # session → monotonic send time
        self.toast_at: Dict[str, float] = {}  # session → monotonic arrival of its frame
        self.third_save_answered: Dict[str, float] = {}  # session → monotonic arrival of the answer
        self.first_event_answered: Dict[str, float] = {}  # session → monotonic arrival of the answer
        self.request_errors: List[str] = []
        self.stream_errors: List[str] = []
        self.sent = 0
        self.ingest_ms: List[float] = []

    def on_toast(self, data: bytes) -> None:
        self.toast_at.setdefault(json.loads(data)["session_id"], time.monotonic())

    async def open_stream(self, user: str) -> Optional[SseStream]:
        try:
            stream = await open_sse(stream_url(self.stream_base, user), self.on_toast)
            await stream.opened  # the server's first block: it has subscribed the stream
        except (OSError, ProtocolError) as e:
            self.stream_errors.append(f"{user}: {type(e).__name__}: {e}")
            return None
        stream.ended.add_done_callback(lambda ended: self.stream_ended(user, ended))
        return stream

    def stream_ended(self, user: str, ended: "asyncio.Future[None]") -> None:
        if not ended.cancelled() and ended.exception() is not None:  # died mid-run, not closed by us
            self.stream_errors.append(f"{user}: {ended.exception()}")

    async def send(self, ingest: KeepAlivePool, user_index: int, n: int) -> None:
        """User ``user_index``'s event ``n``."""
        user = f"lu{user_index}"
        cycle, step, measured = cycle_step(user_index, n)
        session = f"{user}-c{cycle}"
        kind = CYCLE[step]
        event = posthog_event("$pageview" if step == 0 else "$autocapture", ts=time.time(), user=user, session=session,
                              text=None if step == 0 else kind, base_url="http://localhost:3000")

        def request() -> bytes:  # sent_at stamped when it leaves, as posthog-js does: the server corrects by it
            body = {"api_key": PROJECT_KEY, "batch": [event], "sent_at": iso(time.time())}
            return post_request(f"{self.base}/e/", gzipped(json.dumps(body).encode()), "text/plain")

        started = time.monotonic()
        if measured:
            self.third_save_sent[session] = started
        try:
            status, _ = await ingest.request(request)
            if status != 200:
                self.request_errors.append(f"HTTP {status}")
        except Exception as e:  # refused, reset, timed out, or an answer this client cannot read
            self.request_errors.append(f"{type(e).__name__}: {e}")
        answered = time.monotonic()
        self.ingest_ms.append((answered - started) * 1000)
        if step == 0:
            self.first_event_answered[session] = answered
        elif step == len(CYCLE) - 1:
            self.third_save_answered[session] = answered

    def superseded(self, session: str) -> bool:
        """The server answered the user's next session's first event before this session's
        third save (see the module)."""
        user, cycle = session.rsplit("-c", 1)
        next_started = self.first_event_answered.get(f"{user}-c{int(cycle) + 1}")
        saved = self.third_save_answered.get(session)
        return next_started is not None and saved is not None and next_started < saved

    async def run(self) -> Dict[str, Any]:
        ingest = KeepAlivePool(self.base, INGEST_CONNECTIONS)
        users = [f"lu{i}" for i in range(self.users)]
        streams: List[SseStream] = []
        for i in range(0, self.users, 100):  # open in waves: Sanic's accept backlog is 100
            opened = await asyncio.wait_for(asyncio.gather(*(self.open_stream(u) for u in users[i:i + 100])), 60)
            streams += [stream for stream in opened if stream is not None]
        sends = set()
        started = time.monotonic()
        cpu_started = time.process_time()
        total = int(self.rate * self.seconds)
        for j in range(total):  # event j goes out at started + j / rate, users in turn
            delay = started + j / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.send(ingest, j % self.users, j // self.users))
            sends.add(task)
            task.add_done_callback(sends.discard)
        elapsed = time.monotonic() - started
        if sends:
            await asyncio.wait(sends)
        cpu_s = time.process_time() - cpu_started
        load_wall_s = time.monotonic() - started
        await asyncio.sleep(GRACE_S)
        for stream in streams:
            stream.close()
        ingest.close()
        latencies = [(self.toast_at[s] - t) * 1000 for s, t in self.third_save_sent.items() if s in self.toast_at]
        no_toast = [s for s in self.third_save_sent if s not in self.toast_at]
        superseded = [s for s in no_toast if self.superseded(s)]
        missing = [s for s in no_toast if not self.superseded(s)]
        return {
            "users": self.users, "rate": self.rate, "seconds": self.seconds, "sent": total,
            "achieved_rate": total / elapsed, "latencies_ms": latencies, "missing_toasts": len(missing),
            "superseded_sessions": len(superseded),
            "request_errors": len(self.request_errors), "stream_errors": len(self.stream_errors),
            "error_examples": (self.request_errors + self.stream_errors + [f"no toast for {s}" for s in missing])[:5],
            "ingest_ms": self.ingest_ms,
            "cpu_s": cpu_s, "load_wall_s": load_wall_s, "cpu_share": cpu_s / load_wall_s,
        }


def main() -> None:
    base, users, rate, seconds, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    stream_base = sys.argv[6] if len(sys.argv) > 6 else None
    raise_nofile()
    result = asyncio.run(LoadRun(base, users, rate, seconds, stream_base).run())
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()

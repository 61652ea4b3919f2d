"""The load generator for the event → toast figure, run in its own process.

``N`` simulated users each hold an SSE stream and send posthog-js capture requests (gzip
envelope, one event per request, as the app's posthog-js does) at ``rate`` events/s in
total. Each user repeats a four-event cycle in a fresh PostHog session — a pageview of
/projects and three "Save changes" — so every third save should bring a toast; the figure
is the time from sending that save's request to that toast's SSE frame arriving.

Run: ``python -m bench.loadgen BASE_URL USERS RATE SECONDS OUT.json [STREAM_BASE_URL]``: the
streams go to STREAM_BASE_URL when given (another replica of a cluster), else to BASE_URL. The
output also holds the generator's own CPU use over the load (``cpu_share``: CPU seconds per wall
second, 1.0 = one core busy), so a figure can show the generator was not the bottleneck.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import time
from typing import Any, Dict, List, Optional

import aiohttp

from bench.common import raise_nofile
from clients import stream_url
from posthog_events import PROJECT_KEY, iso, posthog_event

CYCLE = ("$pageview", "Save changes", "Save changes", "Save changes")
GRACE_S = 5.0  # how long a toast may take before it counts as missing


class LoadRun:
    def __init__(self, base: str, users: int, rate: float, seconds: float, stream_base: Optional[str] = None) -> None:
        self.base = base
        self.stream_base = stream_base or base
        self.users = users
        self.rate = rate
        self.seconds = seconds
        self.third_save_sent: Dict[str, float] = {}  # session → monotonic send time
        self.toast_at: Dict[str, float] = {}  # session → monotonic arrival of its frame
        self.request_errors: List[str] = []
        self.stream_errors: List[str] = []
        self.sent = 0
        self.ingest_ms: List[float] = []

    async def stream(self, http: aiohttp.ClientSession, user: str, ready: asyncio.Event, opened: List[int]) -> None:
        try:
            async with http.get(stream_url(self.stream_base, user), timeout=aiohttp.ClientTimeout(total=None)) as response:
                if response.status != 200:
                    self.stream_errors.append(f"{user}: HTTP {response.status}")
                    return
                await response.content.readline()  # "retry:": subscribed
                opened[0] += 1
                if opened[0] == self.users:
                    ready.set()
                async for raw in response.content:
                    if raw.startswith(b"data: "):
                        arrived = time.monotonic()
                        self.toast_at.setdefault(json.loads(raw[6:])["session_id"], arrived)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a stream that dies mid-run is an error of the run
            self.stream_errors.append(f"{user}: {type(e).__name__}: {e}")

    async def send(self, http: aiohttp.ClientSession, user: str, n: int) -> None:
        cycle, step = divmod(n, len(CYCLE))
        session = f"{user}-c{cycle}"
        kind = CYCLE[step]
        event = posthog_event("$pageview" if step == 0 else "$autocapture", ts=time.time(), user=user, session=session,
                              text=None if step == 0 else kind, base_url="http://localhost:3000")
        body = gzip.compress(json.dumps({"api_key": PROJECT_KEY, "batch": [event], "sent_at": iso(time.time())}).encode())
        started = time.monotonic()
        if step == len(CYCLE) - 1:
            self.third_save_sent[session] = started
        try:
            async with http.post(f"{self.base}/e/", data=body, headers={"Content-Type": "text/plain"}) as response:
                await response.read()
                if response.status != 200:
                    self.request_errors.append(f"HTTP {response.status}")
        except Exception as e:
            self.request_errors.append(f"{type(e).__name__}: {e}")
        self.ingest_ms.append((time.monotonic() - started) * 1000)

    async def run(self) -> Dict[str, Any]:
        streams_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        ingest_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        ready = asyncio.Event()
        opened = [0]
        users = [f"lu{i}" for i in range(self.users)]
        readers = []
        for i in range(0, self.users, 100):  # open in waves: Sanic's accept backlog is 100
            readers += [asyncio.create_task(self.stream(streams_http, u, ready, opened)) for u in users[i:i + 100]]
            await asyncio.sleep(0.05)
        await asyncio.wait_for(ready.wait(), 60)
        sends = set()
        started = time.monotonic()
        cpu_started = time.process_time()
        total = int(self.rate * self.seconds)
        for j in range(total):  # event j goes out at started + j / rate, users in turn
            delay = started + j / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.send(ingest_http, users[j % self.users], j // self.users))
            sends.add(task)
            task.add_done_callback(sends.discard)
        elapsed = time.monotonic() - started
        if sends:
            await asyncio.wait(sends)
        cpu_s = time.process_time() - cpu_started
        load_wall_s = time.monotonic() - started
        await asyncio.sleep(GRACE_S)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await streams_http.close()
        await ingest_http.close()
        latencies = [(self.toast_at[s] - t) * 1000 for s, t in self.third_save_sent.items() if s in self.toast_at]
        missing = [s for s in self.third_save_sent if s not in self.toast_at]
        return {
            "users": self.users, "rate": self.rate, "seconds": self.seconds, "sent": total,
            "achieved_rate": total / elapsed, "latencies_ms": latencies, "missing_toasts": len(missing),
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

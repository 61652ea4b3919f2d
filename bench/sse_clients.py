"""One process's share of the fan-out streams: open them, wait for one offer on each, close.

The streams are read with the lean client of ``bench/raw_http.py`` (``SseStream``), as the
event → toast load generator reads them and for the same reason: the client processes share
the cores with the servers they measure.

Prints ``READY`` once every stream is subscribed, writes each stream's offer arrival time
(``time.monotonic``, comparable across processes on one machine) to OUT.json, then closes
all streams and prints ``CLOSED``.
Run: ``python -m bench.sse_clients BASE_URL FIRST COUNT WAIT_S OUT.json [options]``:

- ``--max-opening N``: at most N streams opening (connected, not yet subscribed) at once,
  instead of waves of 200 every 0.1 s: a replica on Redis opens streams more slowly, and a
  connection left in a full accept queue for a minute is reset;
- ``--subscribe-s S``: how long every stream has to subscribe (180 s);
- ``--hold``: once OUT.json is written, print ``DONE`` and keep the streams open until a line
  arrives on stdin (several processes then disconnect together, after every offer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Dict, List

from bench.common import raise_nofile
from bench.raw_http import ProtocolError, SseStream, open_sse
from clients import stream_url


async def hold(base: str, first: int, count: int, wait_s: float, out: str, *, max_opening: int = 0,
               subscribe_s: float = 180.0, until_told: bool = False) -> None:
    arrivals: Dict[str, float] = {}
    errors: List[str] = []
    streams: List[SseStream] = []
    subscribed = [0]
    all_subscribed = asyncio.Event()
    all_arrived = asyncio.Event()

    def ended(user: str, done: "asyncio.Future[None]") -> None:
        if not done.cancelled() and done.exception() is not None:  # died, not closed by us
            errors.append(f"{user}: {done.exception()}")

    async def stream(user: str) -> None:
        def on_data(_: bytes) -> None:
            arrivals.setdefault(user, time.monotonic())
            if len(arrivals) == count:
                all_arrived.set()

        try:
            opened = await open_sse(stream_url(base, user), on_data)
            streams.append(opened)
            await opened.opened  # "retry:": the server has subscribed us
        except (OSError, ProtocolError) as e:
            errors.append(f"{user}: {type(e).__name__}: {e}")
            return
        opened.ended.add_done_callback(lambda done: ended(user, done))
        subscribed[0] += 1
        if subscribed[0] == count:
            all_subscribed.set()

    users = [f"fu{i}" for i in range(first, first + count)]
    tasks = []
    wave = min(200, max(1, max_opening // 4)) if max_opening else 200
    for i in range(0, count, wave):  # waves: Sanic's accept backlog is 100
        tasks += [asyncio.create_task(stream(u)) for u in users[i:i + wave]]
        if not max_opening:
            await asyncio.sleep(0.1)
        while max_opening and len(tasks) - subscribed[0] - len(errors) > max_opening - wave:
            await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(all_subscribed.wait(), subscribe_s)
    except asyncio.TimeoutError:
        errors.append(f"only {subscribed[0]} of {count} streams subscribed in {subscribe_s:g} s")
    print("READY", flush=True)
    try:
        await asyncio.wait_for(all_arrived.wait(), wait_s)
    except asyncio.TimeoutError:
        errors.append(f"{count - len(arrivals)} streams got no offer in {wait_s} s")
    with open(out, "w") as f:
        json.dump({"arrivals": arrivals, "errors": errors, "subscribed": subscribed[0]}, f)
    if until_told:
        print("DONE", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for opened in streams:
        opened.close()
    await asyncio.sleep(0)  # the transports close on the next turn of the loop
    print("CLOSED", flush=True)


if __name__ == "__main__":
    raise_nofile()
    parser = argparse.ArgumentParser(prog="python -m bench.sse_clients")
    parser.add_argument("base")
    parser.add_argument("first", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("wait_s", type=float)
    parser.add_argument("out")
    parser.add_argument("--max-opening", type=int, default=0)
    parser.add_argument("--subscribe-s", type=float, default=180.0)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args()
    asyncio.run(hold(args.base, args.first, args.count, args.wait_s, args.out, max_opening=args.max_opening,
                     subscribe_s=args.subscribe_s, until_told=args.hold))

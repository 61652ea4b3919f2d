"""One process's share of the fan-out streams: open them, wait for one offer on each, close.

Prints ``READY`` once every stream is subscribed, writes each stream's offer arrival time
(``time.monotonic``, comparable across processes on one machine) to OUT.json, then closes
all streams and prints ``CLOSED``.
Run: ``python -m bench.sse_clients BASE_URL FIRST COUNT WAIT_S OUT.json``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Dict, List

import aiohttp

from bench.common import raise_nofile
from clients import stream_url


async def hold(base: str, first: int, count: int, wait_s: float, out: str) -> None:
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None))
    arrivals: Dict[str, float] = {}
    errors: List[str] = []
    subscribed = [0]
    all_subscribed = asyncio.Event()
    all_arrived = asyncio.Event()

    async def stream(user: str) -> None:
        try:
            async with http.get(stream_url(base, user)) as response:
                if response.status != 200:
                    errors.append(f"{user}: HTTP {response.status}")
                    return
                await response.content.readline()  # "retry:": the server has subscribed us
                subscribed[0] += 1
                if subscribed[0] == count:
                    all_subscribed.set()
                async for raw in response.content:
                    if raw.startswith(b"data: "):
                        arrivals.setdefault(user, time.monotonic())
                        if len(arrivals) == count:
                            all_arrived.set()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            errors.append(f"{user}: {type(e).__name__}: {e}")

    users = [f"fu{i}" for i in range(first, first + count)]
    tasks = []
    for i in range(0, count, 200):  # waves: Sanic's accept backlog is 100
        tasks += [asyncio.create_task(stream(u)) for u in users[i:i + 200]]
        await asyncio.sleep(0.1)
    try:
        await asyncio.wait_for(all_subscribed.wait(), 180)
    except asyncio.TimeoutError:
        errors.append(f"only {subscribed[0]} of {count} streams subscribed in 180 s")
    print("READY", flush=True)
    try:
        await asyncio.wait_for(all_arrived.wait(), wait_s)
    except asyncio.TimeoutError:
        errors.append(f"{count - len(arrivals)} streams got no offer in {wait_s} s")
    with open(out, "w") as f:
        json.dump({"arrivals": arrivals, "errors": errors, "subscribed": subscribed[0]}, f)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await http.close()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    raise_nofile()
    asyncio.run(hold(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]))

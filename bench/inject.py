"""Chat injection: ``POST /inject`` → ``bot_uttered`` at the socket.io client, 50 users at once.

Baseline: Rasa's own ``POST /conversations/<id>/trigger_intent?output_channel=socketio``
(``rasa run --enable-api``) injecting the same intent and text into the same socket.io
sessions, in the same server. Rounds alternate between the two; each round sends one
request per user concurrently and waits for every bubble (and /inject's follow-up) before
the next.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

import aiohttp

from bench.common import Figure, Summary, setup_logging, sized
from bench.servers import start_bench_rasa
from clients import ChatClient, signed

logger = logging.getLogger("bench.inject")
QUESTION = "Updating projects one by one? There's a multi-select bulk edit you might not have seen — want me to show you?"


async def one(http: aiohttp.ClientSession, url: str, payload: dict, chat: ChatClient, expect_follow_up: bool) -> Tuple[Optional[float], bool]:
    """Milliseconds from sending the request to the question's bubble; and whether it went well."""
    started = time.monotonic()
    async with http.post(url, json=payload, headers=signed(chat.user_id)) as response:
        ok = response.status == 200
        await response.read()
    message = await chat.next_bot_message(10)
    if message is None:
        return None, False
    elapsed = (message["received_at"] - started) * 1000
    if expect_follow_up:
        ok = ok and await chat.next_bot_message(10) is not None  # keep the next round's queue clean
    return elapsed, ok


async def measure(base: str, users: int, rounds: int) -> Tuple[List[float], List[float], int]:
    chats = [await ChatClient(base, f"iu{i}").connect() for i in range(users)]
    ours: List[float] = []
    baseline: List[float] = []
    errors = 0
    try:
        async with aiohttp.ClientSession() as http:
            for round_index in range(rounds + 1):  # round 0 warms both paths up and is dropped
                for mine in (True, False):
                    calls = []
                    for chat in chats:
                        if mine:
                            url = f"{base}/webhooks/proactive/inject"
                            payload = {"sender_id": chat.session_id, "body": QUESTION, "user_id": chat.user_id,
                                       "trigger_id": "bulk_edit_opportunity"}
                        else:
                            url = f"{base}/conversations/{chat.session_id}/trigger_intent?output_channel=socketio"
                            payload = {"name": "EXTERNAL_proactive", "entities": {"proactive_text": QUESTION}}
                        calls.append(one(http, url, payload, chat, expect_follow_up=mine))
                    results = await asyncio.gather(*calls)
                    if round_index == 0:
                        continue
                    errors += sum(1 for _, ok in results if not ok)
                    (ours if mine else baseline).extend(ms for ms, _ in results if ms is not None)
    finally:
        for chat in chats:
            await chat.close()
    return ours, baseline, errors


def run() -> List[Figure]:
    users = sized(50, 10)
    rounds = sized(6, 2)
    with tempfile.TemporaryDirectory(prefix="bench-inject-") as tmp:
        rasa = start_bench_rasa(Path(tmp), extra_args=["--enable-api"], proactive_overrides={"driver": {"tick_seconds": 5}})
        try:
            ours, baseline, errors = asyncio.run(measure(rasa.url, users, rounds))
        finally:
            rasa.stop()
    mine, base = Summary.of(ours), Summary.of(baseline)
    logger.info("inject → bot_uttered: ours %s; Rasa trigger_intent %s; errors %d", mine, base, errors)
    label = f"/inject → bot_uttered, {users} concurrent users"
    return [
        Figure(id="inject.p50_ms", label=f"{label} (p50)", value=mine.p50, unit="ms", baseline=base.p50,
               baseline_label="Rasa trigger_intent route", samples=mine.n, detail={"ours": mine.__dict__, "baseline": base.__dict__}),
        Figure(id="inject.p99_ms", label=f"{label} (p99)", value=mine.p99, unit="ms", baseline=base.p99,
               baseline_label="Rasa trigger_intent route", samples=mine.n),
        Figure(id="inject.errors", label="/inject errors (status, missing bubbles)", value=errors, unit="",
               samples=mine.n + base.n, target="0", met=errors == 0),
    ]


if __name__ == "__main__":
    from bench.common import print_table

    setup_logging()
    print_table(run())

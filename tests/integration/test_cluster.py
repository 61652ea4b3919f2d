"""Offers shared by several replicas (`store: redis`): three real `rasa run` and a real
redis-server. Events on A, the toast stream on B, the chat socket on C; a race on the third save;
every replica restarted; Redis away."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Iterator, List

import httpx
import pytest

from clients import ChatClient, ToastStream, funnel_counts, inject, report_offer, three_saves
from cluster_servers import start_replicas
from rasa_server import RasaServer
from redis_server import RedisServer, start_redis

TRIGGER = "bulk_edit_opportunity"


@pytest.fixture(scope="module")
def cluster_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("cluster-redis"), appendonly=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(cluster_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[List[RasaServer]]:
    servers = start_replicas(cluster_redis, tmp_path_factory.mktemp("cluster"), 3)
    yield servers
    for server in servers:
        server.stop()


async def post_events(server: RasaServer, events: list) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(f"{server.proactive}/events", json=events)


async def test_events_on_a_toast_on_b_open_chat_on_c(replicas, user_id, session_id):
    a, b, c = replicas
    async with ToastStream(b.proactive, user_id) as toast:
        response = await post_events(a, three_saves(user_id, session_id))
        assert response.status_code == 200, response.text
        frame = await toast.next_event(timeout=10)
    assert frame is not None and frame["data"]["trigger_id"] == TRIGGER
    offer = frame["data"]
    chat = await ChatClient(c.url, user_id).connect()
    try:
        clicked = await inject(c.proactive, chat.session_id or "", offer["body"], user_id, trigger_id=TRIGGER,
                               offer_id=offer["offer_id"])
        assert clicked.status_code == 200, clicked.text
        question = await chat.next_bot_message(timeout=10)
        follow_up = await chat.next_bot_message(timeout=10)
        assert question is not None and question["text"] == offer["body"]
        # The follow-up knows what the user did on A: "3 times" comes from the shared activity.
        assert follow_up is not None and "Here's the faster way" in follow_up["text"]
    finally:
        await chat.close()
    assert f"proactive trigger firing: trigger={TRIGGER} session={session_id} user={user_id}" in a.log()


async def test_the_third_save_on_two_replicas_at_once_makes_one_offer_200_times(replicas):
    a, b, c = replicas
    before = funnel_counts(c.proactive)["stages"]["fired"]
    offers = 0
    async with httpx.AsyncClient(timeout=10) as client:
        for n in range(200):
            user, session = f"race-{n}-{uuid.uuid4().hex[:6]}", f"s-{n}"
            events = three_saves(user, session)
            assert (await client.post(f"{a.proactive}/events", json=events[:3])).status_code == 200
            async with ToastStream(c.proactive, user) as toast:
                answers = await asyncio.gather(
                    client.post(f"{a.proactive}/events", json=events[3:]),
                    client.post(f"{b.proactive}/events", json=events[3:]),
                )
                assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
                first = await toast.next_event(timeout=5)
                second = await toast.next_event(timeout=0.1)
            assert first is not None and second is None, n
            offers += 1
    assert offers == 200
    assert funnel_counts(c.proactive)["stages"]["fired"] - before == 200


async def test_restarting_every_replica_keeps_cooldowns_and_pending_offers(replicas, cluster_redis, tmp_path_factory):
    a, b, c = replicas
    shown, parked = f"shown-{uuid.uuid4().hex[:6]}", f"parked-{uuid.uuid4().hex[:6]}"
    async with ToastStream(a.proactive, shown) as toast:
        assert (await post_events(b, three_saves(shown, "s-shown"))).status_code == 200
        first = await toast.next_event(timeout=10)
        assert first is not None
        # As the toast does when it appears: a new tab is then not given the offer again.
        assert (await report_offer(c.proactive, shown, first["data"]["offer_id"], "shown")).status_code == 200
    assert (await post_events(b, three_saves(parked, "s-parked"))).status_code == 200  # no tab: it waits

    for server in replicas:
        server.stop()
    restarted = start_replicas(cluster_redis, tmp_path_factory.mktemp("cluster-again"), 2)
    try:
        d, e = restarted
        async with ToastStream(d.proactive, shown) as toast:
            await post_events(e, three_saves(shown, "s-shown"))
            assert await toast.next_event(timeout=2) is None  # still engaged, then cooling down
        async with ToastStream(e.proactive, parked) as toast:
            frame = await toast.next_event(timeout=10)  # the pending offer, kept through the restart
        assert frame is not None and frame["data"]["user_id"] == parked
    finally:
        for server in restarted:
            server.stop()
        # The module's later tests run on three replicas again, whatever happened here.
        replicas[:] = start_replicas(cluster_redis, tmp_path_factory.mktemp("cluster-third"), 3)


async def test_with_redis_away_for_5_s_under_load_only_503s_then_the_next_story_fires(replicas, cluster_redis):
    """Redis stopped for 5 s while every replica takes events: 503 with Retry-After and nothing
    else, no replica dies, a stream opened before stays open and gets the next offer, and each
    replica logs the outage once when it starts and once when it ends."""
    a, b, _ = replicas
    logs_before = [len(server.log()) for server in replicas]
    watcher = f"watcher-{uuid.uuid4().hex[:6]}"
    statuses: Counter = Counter()
    async with ToastStream(b.proactive, watcher) as toast:
        cluster_redis.stop()
        try:
            outage_ends = time.monotonic() + 5

            async def load(server: RasaServer, n: int) -> None:
                async with httpx.AsyncClient(timeout=10) as client:
                    while time.monotonic() < outage_ends:
                        user = f"load-{n}-{uuid.uuid4().hex[:6]}"
                        response = await client.post(f"{server.proactive}/events", json=three_saves(user, "s-load"))
                        statuses[response.status_code] += 1
                        if response.status_code == 503:
                            assert response.headers["Retry-After"] == "1"
                        await asyncio.sleep(0.02)

            await asyncio.gather(*(load(server, n) for n, server in enumerate(replicas * 2)))
            assert httpx.get(f"{a.proactive}/health", timeout=5).json()["redis"] == "unreachable"
        finally:  # the same data folder: what was written before the stop is back (AOF)
            back = start_redis(cluster_redis.log_path.parent, appendonly=True, port=cluster_redis.port)
            cluster_redis.process = back.process
        assert set(statuses) == {503} and sum(statuses.values()) > 50, statuses
        deadline = time.monotonic() + 15
        while True:
            response = await post_events(a, three_saves(watcher, "s-after"))
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert response.status_code == 200, response.text
        assert await toast.next_event(timeout=10) is not None  # the stream opened before the outage
    for server, before in zip(replicas, logs_before):
        assert server.process.poll() is None
        log = server.log()[before:]
        assert "-> 500" not in log and "Traceback" not in log
        deadline = time.monotonic() + 10  # a replica with no traffic notices at its next heartbeat
        while log.count("Redis is back after") < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            log = server.log()[before:]
        assert log.count("Redis unreachable") == 1 and log.count("Redis is back after") == 1, log[-3000:]
        assert httpx.get(f"{server.proactive}/health", timeout=5).json()["redis"] == "ok"

"""Offers shared by several replicas (`store: redis`): three real `rasa run` and a real
redis-server. Events on A, the toast stream on B, the chat socket on C; a race on the third save;
every replica restarted; Redis away."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Iterator, List

import httpx
import pytest

from clients import ChatClient, ToastStream, funnel_counts, inject, three_saves
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
        assert await toast.next_event(timeout=10) is not None
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
    replicas[:] = start_replicas(cluster_redis, tmp_path_factory.mktemp("cluster-third"), 3)


async def test_with_redis_away_ingest_is_a_503_and_the_next_story_fires_once_it_is_back(replicas, cluster_redis,
                                                                                     tmp_path_factory):
    a, b, _ = replicas
    cluster_redis.stop()
    try:
        response = await post_events(a, three_saves("during-outage", "s-out"))
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        health = httpx.get(f"{a.proactive}/health", timeout=5)
        assert health.status_code == 200  # the replica is alive
    finally:  # the same data folder: what was written before the stop is back (AOF)
        back = start_redis(cluster_redis.log_path.parent, appendonly=True, port=cluster_redis.port)
        cluster_redis.process = back.process
    user = f"after-{uuid.uuid4().hex[:6]}"
    deadline = time.monotonic() + 15
    async with ToastStream(b.proactive, user) as toast:
        while True:
            response = await post_events(a, three_saves(user, "s-after"))
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert response.status_code == 200, response.text
        assert await toast.next_event(timeout=10) is not None
    for server in replicas:
        assert "-> 500" not in server.log() and "Traceback" not in server.log()

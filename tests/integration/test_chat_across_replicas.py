"""Chat across replicas: two `rasa run` sharing a real redis-server (socket.io's Redis client
manager, the chat sessions in Redis, Rasa's Redis lock and tracker stores). The widget's
socket is on B; "Open chat" is handled by A."""

from __future__ import annotations

import asyncio
import time
from typing import Iterator, Tuple

import httpx
import pytest
import redis

from clients import ChatClient, inject, signed
from cluster_servers import start_replicas
from nginx_server import NginxServer, start_nginx
from rasa_server import RasaServer
from redis_server import RedisServer, start_redis

QUESTION = "Updating projects one by one? Want me to show you bulk edit?"


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[RasaServer, RasaServer]]:
    """Offers per replica (store: memory): only the chat layer is shared here."""
    started = start_replicas(redis_server, tmp_path_factory.mktemp("replicas"), 2, store="memory")
    yield started[0], started[1]
    for server in started:
        server.stop()


async def test_open_chat_on_one_replica_reaches_the_socket_held_by_another(replicas, user_id):
    a, b = replicas
    chat = await ChatClient(b.url, user_id).connect()  # the widget's socket: on B
    try:
        response = await inject(a.proactive, chat.session_id or "", QUESTION, user_id, trigger_id="bulk_edit_opportunity")  # the click: on A
        assert response.status_code == 200, response.text
        question = await chat.next_bot_message(timeout=10)
        assert question is not None and question["text"] == QUESTION
        follow_up = await chat.next_bot_message(timeout=10)  # no model here: the how-to as written
        assert follow_up is not None and "Here's the faster way" in follow_up["text"]

        # The user answers on B; the conversation A wrote into is the one B continues.
        await chat.say("thanks")
        assert await chat.next_bot_message(timeout=10) is not None
    finally:
        await chat.close()
    assert f"proactive injected question: sender={chat.session_id} user={user_id}" in a.log()


async def test_another_replica_refuses_what_the_session_s_replica_would(replicas, user_id):
    a, b = replicas
    chat = await ChatClient(b.url, user_id).connect()
    try:
        intruder = await inject(a.proactive, chat.session_id or "", "Click here to win", "someone-else")
        assert intruder.status_code == 403
        assert intruder.json()["error"] == f"chat session {chat.session_id!r} belongs to another user"
        nobody = await inject(a.proactive, "no-such-session", QUESTION, user_id)
        assert nobody.status_code == 404
    finally:
        await chat.close()
    # Once the socket is gone, its session is gone everywhere.
    gone = await inject(a.proactive, chat.session_id or "", QUESTION, user_id)
    assert gone.status_code == 404


def test_both_replicas_say_the_chat_layer_is_shared_and_offers_are_not(replicas, redis_server):
    for server in replicas:
        assert "proactive chat sessions are shared through Redis" in server.log()
        assert "run one replica, or set store: redis" in server.log()
    client = redis.Redis(port=redis_server.port)
    assert len(client.keys("proactive:replica:*")) == 2  # each replica's heartbeat
    client.close()


@pytest.fixture(scope="module")
def balancer(replicas: Tuple[RasaServer, RasaServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    server = start_nginx(tmp_path_factory.mktemp("nginx"), [f"127.0.0.1:{r.port}" for r in replicas])
    yield server
    server.stop()


async def test_through_nginx_the_widget_stays_on_one_replica_and_open_chat_works_from_either(replicas, balancer, user_id):
    # The widget's long-polling socket goes through nginx (sticky); each click round-robins.
    chat = await ChatClient(balancer.url, user_id).connect()
    try:
        for n in range(4):
            text = f"{QUESTION} ({n})"
            response = await inject(balancer.proactive, chat.session_id or "", text, user_id)
            assert response.status_code == 200, response.text
            message = await chat.next_bot_message(timeout=10)
            assert message is not None and message["text"] == text
        await chat.say("thanks")
        assert await chat.next_bot_message(timeout=10) is not None
    finally:
        await chat.close()
    for server in replicas:  # both replicas took clicks for the socket only one of them holds
        assert f"proactive injected question: sender={chat.session_id} user={user_id}" in server.log()


async def test_with_redis_down_inject_is_a_503_and_chat_comes_back_with_it(replicas, redis_server, tmp_path_factory, user_id):
    a, b = replicas
    redis_server.stop()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(f"{a.proactive}/inject", json={"sender_id": "s-1", "body": QUESTION, "user_id": user_id},
                                         headers=signed(user_id))
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        assert "-> 500" not in a.log()
    finally:
        restarted = start_redis(tmp_path_factory.mktemp("redis-again"), port=redis_server.port)
        redis_server.process, redis_server.log_path = restarted.process, restarted.log_path

    # Redis is back (empty: no persistence here): a new chat on B is found from A again once
    # the replicas' heartbeats have said they are alive (every 5 s).
    chat = await ChatClient(b.url, user_id).connect()
    try:
        deadline = time.monotonic() + 12
        while True:
            response = await inject(a.proactive, chat.session_id or "", QUESTION, user_id)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert response.status_code == 200, response.text
        message = await chat.next_bot_message(timeout=10)
        assert message is not None and message["text"] == QUESTION
    finally:
        await chat.close()

"""What a chat session registry must do, in this process (``ChatSessions``) and shared
through a real redis-server (``RedisChatSessions``): one suite over both."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, List

import pytest
import redis

from addons.errors import StoreUnavailable, UnknownChatSession
from addons.rasa.chat_sessions import ChatSessionRegistry, ChatSessions
from addons.rasa import shared_chat_sessions
from addons.rasa.shared_chat_sessions import PREFIX, RedisChatSessions
from addons.security.identity import Forbidden
from addons.stores.memory import InMemoryChatOwners
from redis_server import RedisServer



@pytest.fixture(params=["memory", "redis"])
async def registry(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[ChatSessionRegistry]:
    made: ChatSessionRegistry
    if request.param == "memory":
        made = ChatSessions(InMemoryChatOwners())
    else:
        redis.Redis(port=redis_server.port).flushdb()
        made = RedisChatSessions.from_url(redis_server.url)
    await made.start()
    yield made
    await made.close()


async def test_a_joined_session_belongs_to_its_verified_user(registry: ChatSessionRegistry):
    await registry.connected("sid-1", "ada")
    await registry.joined("chat-1", "sid-1")
    assert await registry.user_of("chat-1") == "ada"
    await registry.claim_for("chat-1", "ada")
    with pytest.raises(Forbidden):
        await registry.claim_for("chat-1", "eve")
    assert registry.open_count() == 1


async def test_an_unverified_session_is_claimed_by_the_first_user_who_opens_it(registry: ChatSessionRegistry):
    await registry.joined("chat-2", "sid-2")
    assert await registry.user_of("chat-2") is None
    await registry.claim_for("chat-2", "bo")
    with pytest.raises(Forbidden):
        await registry.claim_for("chat-2", "eve")


async def test_a_session_with_no_socket_is_unknown_and_forgets_its_owner(registry: ChatSessionRegistry):
    with pytest.raises(UnknownChatSession):
        await registry.claim_for("nobody-here", "ada")
    await registry.connected("sid-3", "cy")
    await registry.joined("chat-3", "sid-3")
    await registry.left("sid-3")
    with pytest.raises(UnknownChatSession):
        await registry.claim_for("chat-3", "cy")
    assert await registry.user_of("chat-3") is None
    assert registry.open_count() == 0


async def test_a_socket_moving_to_another_session_leaves_the_first(registry: ChatSessionRegistry):
    await registry.connected("sid-4", "di")
    await registry.joined("chat-4a", "sid-4")
    await registry.joined("chat-4b", "sid-4")
    with pytest.raises(UnknownChatSession):
        await registry.claim_for("chat-4a", "di")
    await registry.claim_for("chat-4b", "di")


async def test_replicas_see_each_other_s_sockets_until_one_stops_beating(redis_server: RedisServer):
    redis.Redis(port=redis_server.port).flushdb()
    a, b = RedisChatSessions.from_url(redis_server.url), RedisChatSessions.from_url(redis_server.url)
    opened: List[RedisChatSessions] = [a, b]
    for replica in opened:
        await replica.start()
    try:
        await a.connected("sid-a", "fay")
        await a.joined("chat-5", "sid-a")
        await b.claim_for("chat-5", "fay")  # B finds A's socket
        with pytest.raises(Forbidden):
            await b.claim_for("chat-5", "eve")
        # A dies without a word: its heartbeat key expires (here: is deleted), its socket stops counting.
        redis.Redis(port=redis_server.port).delete(f"{PREFIX}replica:{a.replica_id}")
        with pytest.raises(UnknownChatSession):
            await b.claim_for("chat-5", "fay")
    finally:
        for replica in opened:
            await replica.close()


async def test_a_session_whose_sockets_all_died_belongs_to_whoever_joins_it_next(redis_server: RedisServer):
    redis.Redis(port=redis_server.port).flushdb()
    a, b = RedisChatSessions.from_url(redis_server.url), RedisChatSessions.from_url(redis_server.url)
    for replica in (a, b):
        await replica.start()
    try:
        await a.connected("sid-x", "xavier")
        await a.joined("chat-6", "sid-x")
        redis.Redis(port=redis_server.port).delete(f"{PREFIX}replica:{a.replica_id}")  # A died
        await b.connected("sid-y", "yvonne")
        await b.joined("chat-6", "sid-y")
        assert await b.user_of("chat-6") == "yvonne"
        await b.claim_for("chat-6", "yvonne")
    finally:
        for replica in (a, b):
            await replica.close()


async def test_no_session_id_names_another_session_s_keys(redis_server: RedisServer):
    redis.Redis(port=redis_server.port).flushdb()
    registry = RedisChatSessions.from_url(redis_server.url)
    await registry.start()
    try:
        for n, session_id in enumerate(("victim:sockets", "victim", "{u:x}", "a:b:c")):
            await registry.connected(f"sid-{n}", f"user-{n}")
            await registry.joined(session_id, f"sid-{n}")
        for n, session_id in enumerate(("victim:sockets", "victim", "{u:x}", "a:b:c")):
            await registry.claim_for(session_id, f"user-{n}")
    finally:
        await registry.close()


async def test_a_replica_whose_start_up_held_the_loop_past_its_heartbeat_ttl_is_alive_once_the_loop_is_free(
        redis_server: RedisServer, monkeypatch):
    """As `rasa run` starts: the heartbeat starts, then loading the model holds the loop (here
    1.5 s past a 1 s TTL; a model can take longer than the real 15 s)."""
    redis.Redis(port=redis_server.port).flushdb()
    monkeypatch.setattr(shared_chat_sessions, "REPLICA_TTL_S", 1)
    starting, other = RedisChatSessions.from_url(redis_server.url), RedisChatSessions.from_url(redis_server.url)
    await other.start()
    await starting.start()
    try:
        time.sleep(1.5)  # the model loads, before the heartbeat task first ran: nothing else runs
        await asyncio.sleep(0.1)  # the server is up
        await starting.connected("sid-s", "sal")
        await starting.joined("chat-8", "sid-s")
        await other.claim_for("chat-8", "sal")  # B finds the socket: its replica is alive
    finally:
        await starting.close()
        await other.close()


async def test_a_leave_that_failed_is_done_by_the_next_heartbeat(redis_server: RedisServer, monkeypatch):
    redis.Redis(port=redis_server.port).flushdb()
    registry = RedisChatSessions.from_url(redis_server.url)
    other = RedisChatSessions.from_url(redis_server.url)
    await registry.start()
    await other.start()
    try:
        await registry.connected("sid-z", "zoe")
        await registry.joined("chat-7", "sid-z")
        real_leave = registry._leave

        async def redis_blips(*args, **kwargs):
            raise redis.exceptions.ConnectionError("Redis went away")

        monkeypatch.setattr(registry, "_leave", redis_blips)
        with pytest.raises(StoreUnavailable):
            await registry.left("sid-z")
        monkeypatch.setattr(registry, "_leave", real_leave)
        await other.claim_for("chat-7", "zoe")  # still registered in Redis: the leave did not land
        await registry.beat()
        with pytest.raises(UnknownChatSession):
            await other.claim_for("chat-7", "zoe")
        assert await other.user_of("chat-7") is None
    finally:
        await registry.close()
        await other.close()

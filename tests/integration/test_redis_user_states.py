"""One user's state as a unit of work in a real redis-server: a version-checked commit that
exactly one of two racing writers wins, with nothing of the loser's written; action rows kept
apart and changed by what a commit says; a version a replica holds not sent again, and never
reused; due users claimed by exactly one replica."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import AsyncIterator

import pytest
import redis

from addons.errors import StoreUnavailable
from addons.stores.redis.client import UNITS_CALL_TIMEOUT_S, units_client
from addons.stores.redis.keys import CHANNEL, DUE_KEY, DUE_OWNERS_KEY, replica_key
from addons.stores.redis.user_states import MAX_KEEP_S, Commit, RedisUserStates, RowsChange
from redis_server import RedisServer, start_redis



def _client(server: RedisServer) -> "redis.asyncio.Redis[str]":
    return redis.asyncio.Redis(port=server.port, decode_responses=True)


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[tuple]:
    """Two replicas' views of the same Redis, each on its own connection."""
    redis.Redis(port=redis_server.port).flushdb()
    clients = [_client(redis_server), _client(redis_server)]
    yield tuple(RedisUserStates(c, ttl_s=3600) for c in clients)
    for client in clients:
        await client.close()


async def test_an_unknown_user_loads_empty_and_a_commit_is_read_back(replicas):
    a, b = replicas
    loaded = await a.load("ada")
    assert (loaded.version, loaded.state) == (0, None)
    assert await a.commit(loaded, Commit(state={"sessions": {"s1": [1, 2]}}, due_at=1_000.5,
                                         counts={("2026-11-30", "t1", "stage:fired"): 1}))
    again = await b.load("ada")
    assert again.version > 0 and again.state == {"sessions": {"s1": [1, 2]}}
    assert await b.counts("2026-11-30", "t1") == {"stage:fired": 1}
    assert await b.claim_due(1_000.0) == [] and await b.claim_due(1_000.5) == ["ada"]
    ttl = redis.Redis(port=a._redis.connection_pool.connection_kwargs["port"]).ttl("proactive:{u:ada}:state")
    assert 0 < ttl <= 3600


async def test_a_commit_keeps_the_user_s_keys_as_long_as_it_asks_within_a_bound(replicas):
    a, _ = replicas
    sync = redis.Redis(port=a._redis.connection_pool.connection_kwargs["port"])
    assert await a.commit(await a.load("eli"), Commit(state={"v": 1}, keep_s=86_400.5))
    assert 86_400 - 5 < sync.ttl("proactive:{u:eli}:state") <= 86_401
    assert await a.commit(await a.load("eli"), Commit(state={"v": 2}, keep_s=1e20))  # an absurd adoption window
    assert MAX_KEEP_S - 5 < sync.ttl("proactive:{u:eli}:ver") <= MAX_KEEP_S


async def test_of_two_replicas_committing_from_the_same_load_exactly_one_wins_every_time(replicas):
    a, b = replicas
    for n in range(200):
        user = f"race-{n}"
        seen_by_a, seen_by_b = await asyncio.gather(a.load(user), b.load(user))
        won = await asyncio.gather(
            a.commit(seen_by_a, Commit(state={"by": "a"}, counts={("2026-11-30", "t1", "stage:fired"): 1})),
            b.commit(seen_by_b, Commit(state={"by": "b"}, counts={("2026-11-30", "t1", "stage:fired"): 1})),
        )
        assert sorted(won) == [False, True], n
        final = await a.load(user)
        assert final.version > 0 and final.state == {"by": "a" if won[0] else "b"}
    assert await a.counts("2026-11-30", "t1") == {"stage:fired": 200}  # the losers counted nothing


async def test_a_commit_from_a_stale_load_writes_nothing(replicas):
    a, b = replicas
    stale = await a.load("bo")
    assert await b.commit(await b.load("bo"), Commit(state={"v": 1}, due_at=50.0))
    assert not await a.commit(stale, Commit(state={"v": "stale"}, due_at=10.0, counts={("2026-11-30", "t1", "x"): 5}))
    assert (await a.load("bo")).state == {"v": 1}
    assert await a.claim_due(20.0) == []  # the stale due time was not written either
    assert await a.counts("2026-11-30", "t1") == {}
    assert await a.commit(await a.load("bo"), Commit(state=None))  # an empty state is deleted
    assert (await b.load("bo")).state is None


async def test_a_commit_with_a_bad_number_is_refused_before_anything_is_written(replicas):
    a, _ = replicas
    loaded = await a.load("cy")
    for bad in (Commit(state={"v": 1}, due_at=float("nan")), Commit(state={"v": 1}, counts={("d", "t", "k"): 1.5}),
                Commit(state={"v": 1}, counts={("d", "t", "k"): True}), Commit(state={"v": 1}, keep_s=float("inf"))):
        with pytest.raises(ValueError):
            await a.commit(loaded, bad)
    assert (await a.load("cy")).version == 0


async def test_a_large_claim_is_taken_whole(replicas):
    a, _ = replicas
    client = redis.Redis(port=a._redis.connection_pool.connection_kwargs["port"])
    client.zadd(DUE_KEY, {f"many-{n}": n for n in range(9_000)})
    assert len(await a.claim_due(10_000.0, limit=9_000)) == 9_000
    assert await a.claim_due(10_000.0, limit=9_000) == []  # every one of them leased


async def test_each_due_user_is_claimed_by_one_replica(replicas):
    a, b = replicas
    for n in range(300):
        assert await a.commit(await a.load(f"due-{n}"), Commit(state={"n": n}, due_at=float(n)))
    claimed_a, claimed_b = await asyncio.gather(a.claim_due(1_000.0, limit=200), b.claim_due(1_000.0, limit=200))
    claimed_rest = await a.claim_due(1_000.0, limit=200)
    everyone = claimed_a + claimed_b + claimed_rest
    assert sorted(everyone) == sorted(f"due-{n}" for n in range(300))
    assert len(set(everyone)) == 300
    assert await b.claim_due(1_000.0) == []


async def test_a_claimed_user_whose_pass_never_committed_is_due_again_when_the_lease_ends(replicas):
    a, b = replicas
    assert await a.commit(await a.load("ned"), Commit(state={"v": 1}, due_at=5.0))
    assert await a.claim_due(10.0, lease_s=30.0) == ["ned"]  # then a's replica dies mid-pass
    assert await b.claim_due(39.0) == []
    assert await b.claim_due(40.0) == ["ned"]
    # A pass that commits plans the user itself, which ends the lease.
    assert await b.commit(await b.load("ned"), Commit(state={"v": 2}, due_at=100.0))
    assert await a.claim_due(99.0) == [] and await a.claim_due(100.0) == ["ned"]


async def test_a_due_user_goes_to_the_replica_that_keeps_it_unless_that_one_is_dead_or_late(redis_server):
    """The pass of a user another replica committed would make that replica's kept state
    stale: the claim leaves it to that replica while it beats, for ``others_after_s``."""
    server = redis.Redis(port=redis_server.port, decode_responses=True)
    server.flushdb()
    clients = [_client(redis_server) for _ in range(3)]
    a, b, anyone = (RedisUserStates(clients[0], replica_id="ra"), RedisUserStates(clients[1], replica_id="rb"),
                    RedisUserStates(clients[2]))
    server.set(replica_key("ra"), "1")
    server.set(replica_key("rb"), "1")
    try:
        for user, states in (("ada", a), ("bob", b), ("cy", anyone)):
            assert await states.commit(await states.load(user), Commit(state={"u": user}, due_at=100.0))
        assert sorted(await a.claim_due(105.0, others_after_s=10.0)) == ["ada", "cy"]  # its own, and nobody's
        for user in ("ada", "cy"):  # their passes plan them later
            assert await a.commit(await a.load(user), Commit(state={"u": user}, due_at=1_000.0))
        assert await a.claim_due(105.0, others_after_s=10.0) == []  # bob is b's, which beats
        assert await a.claim_due(110.0, others_after_s=10.0) == ["bob"]  # b let him wait too long
        assert await b.commit(await b.load("bob"), Commit(state={"u": "bob"}, due_at=200.0))  # b's again
        server.delete(replica_key("rb"))  # b died
        assert await a.claim_due(200.0, others_after_s=10.0) == ["bob"]
        assert await a.commit(await a.load("bob"), Commit(state={"u": "bob"}))  # nothing planned: no owner kept
        assert server.hgetall(DUE_OWNERS_KEY) == {"ada": "ra", "cy": "ra"}
        for n in range(15):  # many of b's due first: a finds its own behind them, CLAIM_SCAN per one it may take
            assert await b.commit(await b.load(f"b{n}"), Commit(state={}, due_at=300.0 + n))
        assert await a.commit(await a.load("ada"), Commit(state={"u": "ada"}, due_at=400.0))
        server.set(replica_key("rb"), "1")
        assert await a.claim_due(400.0, limit=3, others_after_s=1_000.0) == []  # 12 looked at
        assert await a.claim_due(400.0, limit=4, others_after_s=1_000.0) == ["ada"]  # 16
        assert await b.commit(await b.load("dee"), Commit(state={}, due_at=500.0))
        assert "dee" in await b.claim_due(500.0)
        await b.reschedule("dee", 505.0)  # b's pass failed: nobody's now, or b would keep failing it
        assert "dee" in await a.claim_due(505.0, others_after_s=1_000.0)
    finally:
        for client in clients:
            await client.close()


async def test_redis_down_is_store_unavailable(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("redis-down"))
    client = _client(server)
    states = RedisUserStates(client)
    server.stop()
    with pytest.raises(StoreUnavailable) as refused:
        await states.load("ada")
    assert refused.value.status == 503 and refused.value.headers() == {"Retry-After": "1"}
    await client.close()


async def test_on_the_units_own_connection_a_hung_redis_is_store_unavailable_and_then_heals(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("redis-hung"))
    client = units_client(server.url)
    states = RedisUserStates(client)
    try:
        assert (await states.load("ada")).version == 0  # the connection is up
        os.kill(server.process.pid, signal.SIGSTOP)  # accepts nothing, answers nothing
        started = time.monotonic()
        try:
            with pytest.raises(StoreUnavailable):
                await states.load("ada")
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert time.monotonic() - started < UNITS_CALL_TIMEOUT_S + 1  # bounded by the deadline, not the socket
        assert await states.commit(await states.load("ada"), Commit(state={"v": 1}))  # a fresh connection
        assert (await states.load("ada")).state == {"v": 1}
    finally:
        await client.close()
        server.stop()


async def test_a_commit_s_messages_leave_with_it_and_a_loser_s_never(replicas, redis_server):
    a, b = replicas
    listener = redis.Redis(port=redis_server.port, decode_responses=True).pubsub()
    listener.subscribe(CHANNEL)
    assert listener.get_message(timeout=1)["type"] == "subscribe"
    seen_a, seen_b = await a.load("eve"), await b.load("eve")
    assert await a.commit(seen_a, Commit(state={"v": 1}, messages=["offer from a"],
                                         counts={("2026-11-30", "t1", "stage:fired"): 1}))
    assert not await b.commit(seen_b, Commit(state={"v": 2}, messages=["offer from b"]))
    received = []
    while (message := listener.get_message(timeout=0.5)) is not None:
        received.append(message["data"])
    assert received == ["offer from a"]
    listener.close()


def _row(seq: int) -> str:
    return f'[{1000 + seq},{seq},"e{seq}","Save changes"]'


async def test_action_rows_are_appended_trimmed_and_replaced_as_a_commit_says(replicas, redis_server):
    a, b = replicas
    assert await a.commit(await a.load("fe"), Commit(state={"v": 1}, rows={
        "s1": RowsChange(append=(_row(1), _row(2), _row(3))), "s2": RowsChange(append=(_row(9),)),
    }))
    loaded = await b.load("fe")
    assert loaded.rows == {"s1": [[1001, 1, "e1", "Save changes"], [1002, 2, "e2", "Save changes"],
                                  [1003, 3, "e3", "Save changes"]],
                           "s2": [[1009, 9, "e9", "Save changes"]]}
    # the usual ingest: the oldest trimmed, one appended; s2 untouched; then s1 written anew and s2 gone
    assert await b.commit(loaded, Commit(state={"v": 2}, rows={"s1": RowsChange(append=(_row(4),), trim=2)}))
    loaded = await a.load("fe")
    assert [row[1] for row in loaded.rows["s1"]] == [3, 4] and [row[1] for row in loaded.rows["s2"]] == [9]
    assert await a.commit(loaded, Commit(state={"v": 3}, rows={
        "s1": RowsChange(append=(_row(0), _row(3)), replace=True), "s2": RowsChange(replace=True),
    }))
    loaded = await b.load("fe")
    assert {sid: [row[1] for row in rows] for sid, rows in loaded.rows.items()} == {"s1": [0, 3]}
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    assert client.smembers("proactive:{u:fe}:sessions") == {"s1"}
    assert not client.exists("proactive:{u:fe}:actions:s2")
    assert 0 < client.ttl("proactive:{u:fe}:actions:s1") <= 3600  # as long as the document
    # a stale commit changes no rows either
    assert await a.commit(loaded, Commit(state={"v": 4}, rows={"s1": RowsChange(append=(_row(5),))}))
    assert not await b.commit(loaded, Commit(state={"v": "stale"}, rows={"s1": RowsChange(replace=True)}))
    assert [row[1] for row in (await b.load("fe")).rows["s1"]] == [0, 3, 5]
    assert await a.commit(await a.load("fe"), Commit(state=None, rows={"s1": RowsChange(replace=True)}))
    assert client.keys("proactive:{u:fe}*") == ["proactive:{u:fe}:ver"]  # kept: a stale commit must still lose


async def test_a_replica_still_at_the_version_it_holds_is_sent_neither_document_nor_rows(replicas):
    a, b = replicas
    assert await a.commit(await a.load("gus"), Commit(state={"v": 1}, rows={"s1": RowsChange(append=(_row(1),))}))
    version = (await a.load("gus")).version
    held = (await a.load_many(["gus", "nobody"], {"gus": version, "nobody": 7}))
    assert (held[0].current, held[0].state, held[0].rows, held[0].version) == (True, None, {}, version)
    assert (held[1].current, held[1].state, held[1].version) == (False, None, 0)
    assert await b.commit(await b.load("gus"), Commit(state={"v": 2}))
    moved_on = (await a.load_many(["gus"], {"gus": version}))[0]
    assert not moved_on.current and moved_on.state == {"v": 2} and [r[1] for r in moved_on.rows["s1"]] == [1]


async def test_a_version_is_never_seen_twice_even_after_the_user_s_keys_expired(replicas, redis_server):
    a, _ = replicas
    assert await a.commit(await a.load("hal"), Commit(state={"v": 1}))
    first = (await a.load("hal")).version
    redis.Redis(port=redis_server.port).delete("proactive:{u:hal}:ver", "proactive:{u:hal}:state")
    assert await a.commit(await a.load("hal"), Commit(state={"v": "again"}))
    again = await a.load_many(["hal"], {"hal": first})
    assert again[0].version != first and not again[0].current and again[0].state == {"v": "again"}


async def test_versions_given_after_redis_lost_its_data_are_past_every_earlier_one(replicas, redis_server):
    a, _ = replicas
    assert await a.commit(await a.load("ida"), Commit(state={"v": 1}))
    before = (await a.load("ida")).version
    redis.Redis(port=redis_server.port).flushdb()  # as a restart without persistence would leave it
    assert await a.commit(await a.load("ida"), Commit(state={"v": "anew"}))
    after = await a.load_many(["ida"], {"ida": before})
    assert after[0].version > before and not after[0].current and after[0].state == {"v": "anew"}

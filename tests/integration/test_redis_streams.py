"""Toast streams across replicas on a real redis-server: presence counted per live replica,
an offer published on one replica reaches the stream another holds, once."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, List, Sequence

import pytest
import redis

from addons.errors import StoreUnavailable
from addons.offers.offer import Offer
from addons.stores.redis.keys import CHANNEL, PREFIX
from addons.stores.redis.client import MAX_CONNECTIONS, redis_client
from addons.stores.redis.streams import SharedStreams
from addons.stores.redis.user_states import RedisUserStates

from redis_server import RedisServer, start_redis


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis-streams"))
    yield server
    server.stop()


def _offer(n: int, user: str = "ada") -> Offer:
    return Offer(f"offer-{n}", user, f"s-{user}", "bulk_edit_opportunity", f"body {n}", (), time.time())


async def open_streams(server: RedisServer, user_id: str) -> int:
    """The user's streams on live replicas, as a unit of work reads them with the user's state."""
    client = redis.asyncio.Redis(port=server.port, decode_responses=True)
    try:
        return (await RedisUserStates(client).load(user_id)).streams
    finally:
        await client.close()


def publish(server: RedisServer, offers: Sequence[Offer]) -> None:
    """Offers on the fan-out channel, as a unit's commit publishes them."""
    client = redis.Redis(port=server.port)
    for offer in offers:
        client.publish(CHANNEL, json.dumps(offer.to_stored_dict(), separators=(",", ":")))


async def _replicas(server: RedisServer, *names: str):
    alive = redis.Redis(port=server.port)
    made = []
    for name in names:
        alive.set(f"{PREFIX}replica:{name}", "1", ex=60)  # the chat layer's heartbeat, as it would be
        streams = SharedStreams(redis.asyncio.Redis(port=server.port, decode_responses=True), name)
        await streams.start()
        made.append(streams)
    deadline = time.monotonic() + 10
    while alive.pubsub_numsub(CHANNEL)[0][1] < len(names):  # every listener has subscribed
        assert time.monotonic() < deadline, "the fan-out listeners never subscribed"
        await asyncio.sleep(0.02)
    return made


async def _close(*replicas: SharedStreams) -> None:
    for replica in replicas:
        await replica.close()
        await replica._redis.close()


async def test_an_offer_published_on_one_replica_reaches_the_stream_another_holds_once(redis_server):
    a, b = await _replicas(redis_server, "a", "b")
    try:
        stream = await b.subscribe("ada", replay=[_offer(1)])
        assert await open_streams(redis_server, "ada") == 1 and await open_streams(redis_server, "bo") == 0
        publish(redis_server, [_offer(1), _offer(2)])  # offer 1 also came in the replay: given once
        first, second = await stream.next(2), await stream.next(2)
        third = await stream.next(0.3)
        assert [first.offer_id, second.offer_id, third] == ["offer-1", "offer-2", None]
        await b.unsubscribe(stream)
        assert await open_streams(redis_server, "ada") == 0
    finally:
        await _close(a, b)


async def test_the_streams_of_a_replica_that_stopped_beating_do_not_count(redis_server):
    a, b = await _replicas(redis_server, "a", "b")
    try:
        await b.subscribe("ada")
        await a.subscribe("ada")
        assert await open_streams(redis_server, "ada") == 2
        redis.Redis(port=redis_server.port).delete(f"{PREFIX}replica:b")  # B died: its key expired
        assert await open_streams(redis_server, "ada") == 1
    finally:
        await _close(a, b)


async def test_fan_out_comes_back_with_redis_and_a_missed_count_heals(redis_server, tmp_path_factory):
    a, b = await _replicas(redis_server, "a", "b")
    try:
        stream = await b.subscribe("ada")
        extra = await b.subscribe("ada")
        redis_server.stop()
        with pytest.raises(StoreUnavailable):
            await b.unsubscribe(extra)  # Redis missed the decrement
        restarted = start_redis(tmp_path_factory.mktemp("redis-again"), port=redis_server.port)
        redis_server.process, redis_server.log_path = restarted.process, restarted.log_path
        redis.Redis(port=redis_server.port).set(f"{PREFIX}replica:b", "1", ex=60)
        assert await open_streams(redis_server, "ada") == 0  # the restart lost presence
        await b.beat()  # the heartbeat writes B's true count
        assert await open_streams(redis_server, "ada") == 1
        deadline = time.monotonic() + 10
        while True:  # the listener reconnects on its own
            publish(redis_server, [_offer(3)])
            got = await stream.next(0.5)
            if got is not None or time.monotonic() > deadline:
                break
        assert got is not None and got.offer_id == "offer-3"
    finally:
        await _close(a, b)


async def test_a_burst_of_streams_opening_waits_for_a_few_connections_instead_of_opening_one_each(redis_server):
    """Thousands of tabs reconnecting at once (a replica restart) must not run the replica out
    of file descriptors: the client's pool is bounded (``redis_client``)."""
    alive = redis.Redis(port=redis_server.port)
    alive.set(f"{PREFIX}replica:burst", "1", ex=60)
    streams = SharedStreams(redis_client(redis_server.url, max_connections=8), "burst")
    try:
        subscriptions = await asyncio.gather(*(streams.subscribe(f"burst-{n}") for n in range(1000)))
        assert len(subscriptions) == 1000 and streams.local_count() == 1000
        assert await open_streams(redis_server, "burst-999") == 1
        named = [c for c in alive.client_list() if c["cmd"] != "client|list"]
        assert len(named) <= 8, named
    finally:
        await streams.close()
        await streams._redis.close()


@pytest.fixture
async def solo(redis_server: RedisServer) -> AsyncIterator[Callable[..., SharedStreams]]:
    """Makes the streams of one live replica ("solo") on a pool of ``max_connections``; all
    closed after the test."""
    made: List[SharedStreams] = []

    def make(max_connections: int = MAX_CONNECTIONS) -> SharedStreams:
        redis.Redis(port=redis_server.port).set(f"{PREFIX}replica:solo", "1", ex=60)
        made.append(SharedStreams(redis_client(redis_server.url, max_connections=max_connections), "solo"))
        return made[-1]

    yield make
    for streams in made:
        await streams.close()
        await streams._redis.close()


def each_pipeline(client: Any, around: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]) -> None:
    """From now on, every pipeline ``client`` makes runs ``around(its execute)`` instead: how
    a busy replica's timing can order its writes. ``del client.pipeline`` undoes it."""
    make = client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make(*args, **kwargs)
        execute = pipe.execute

        async def executed(*a: Any, **k: Any) -> Any:
            return await around(lambda: execute(*a, **k))

        pipe.execute = executed
        return pipe

    client.pipeline = pipeline


async def test_a_stream_whose_closing_is_cancelled_waiting_for_a_connection_stops_counting_at_the_next_beat(redis_server, solo):
    """Thousands of tabs closing at once: a request cancelled while its decrement waits for a
    pooled connection must not leave the stream counted (offers would go to nobody)."""
    streams = solo(max_connections=1)
    subscription = await streams.subscribe("ivy")
    busy = asyncio.ensure_future(streams._redis.blpop("nothing-comes", timeout=1))  # holds the one connection
    await asyncio.sleep(0.1)
    closing = asyncio.ensure_future(streams.unsubscribe(subscription))
    await asyncio.sleep(0.1)
    closing.cancel()  # the client went away while the decrement waited
    with pytest.raises(asyncio.CancelledError):
        await closing
    await busy
    assert await open_streams(redis_server, "ivy") == 1  # the decrement never ran
    await streams.beat()
    assert await open_streams(redis_server, "ivy") == 0


async def test_a_stream_whose_count_landed_after_its_opening_gave_up_stops_counting_at_the_next_beat(redis_server, solo):
    """A replica so busy that a stream's increment is answered after it stopped waiting (2 s):
    the opening fails, but the increment landed. The next beat writes the true count."""
    streams = solo()

    async def answer_lost(execute: Callable[[], Awaitable[Any]]) -> Any:
        await execute()  # Redis applied it; the reply is what went missing
        raise redis.exceptions.TimeoutError("Timeout reading from Redis")

    each_pipeline(streams._redis, answer_lost)
    with pytest.raises(StoreUnavailable):
        await streams.subscribe("kim")
    del streams._redis.pipeline
    assert await open_streams(redis_server, "kim") == 1 and streams.local_count("kim") == 0
    await streams.beat()
    assert await open_streams(redis_server, "kim") == 0


async def test_a_stream_closing_while_a_beat_is_on_its_way_stops_counting_at_the_next_beat(redis_server, solo):
    """A beat of thousands of users is long, and Redis serves other connections in between: a
    stream's decrement can land before the beat's older count of it. The next beat fixes it."""
    streams = solo()
    subscription = await streams.subscribe("lou")

    async def after_the_close(execute: Callable[[], Awaitable[Any]]) -> Any:
        del streams._redis.pipeline  # the decrement's own pipeline runs as usual
        await streams.unsubscribe(subscription)  # and reaches Redis first
        return await execute()

    each_pipeline(streams._redis, after_the_close)
    await streams.beat()
    assert await open_streams(redis_server, "lou") == 1  # the beat's count of 1 landed last
    await streams.beat()
    assert await open_streams(redis_server, "lou") == 0

"""What any storage backend must do, seen where the runtime uses it: one suite over the
``OfferService`` of each backend ``store:`` selects, built by ``CopilotRuntime`` as `rasa run`
builds it. ``memory`` is the engine of one process; ``redis`` runs every operation as a unit of
work on a real redis-server (started by the suite), with offers reaching streams through
Redis's fan-out.

The per-protocol suite (``tests/unit/test_store_contract.py``) covers the in-memory stores, which
the Redis backend also runs on, one user's bundle at a time. This one covers what a backend
adds: the state lives on between operations, offers reach the streams, replays and pending
offers come back once, counts land once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import AsyncIterator, Dict, Iterator, List, Optional

import pytest
import redis

from addons.config import ProactiveConfig, load_config
from addons.insights.records import day_of
from addons.offers.delivery import CLOSED, Subscription
from addons.offers.ingest import NormalisedBatch, normalise_batch, parse_capture_payload
from addons.offers.offer import Offer, stream_cursor
from addons.offers.service import OfferService
from addons.runtime import CopilotRuntime
from posthog_events import posthog_event
from rasa_server import BOT
from redis_server import RedisServer, start_redis

TRIGGER = "bulk_edit_opportunity"
WAIT_S = 5.0  # an offer crosses Redis in milliseconds; this only bounds a failing test
QUIET_S = 0.5  # how long "nothing more arrives" is watched


@pytest.fixture(scope="module")
def contract_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis-contract"))
    yield server
    server.stop()


def _config(**caps: int) -> ProactiveConfig:
    config = load_config(BOT / "proactive.yml")
    return replace(config, caps=replace(config.caps, **caps)) if caps else config


async def _service(backend: str, contract_redis: RedisServer, config: ProactiveConfig) -> OfferService:
    environ: Dict[str, str] = {}
    if backend == "redis":
        redis.Redis(port=contract_redis.port).flushdb()
        environ = {"PROACTIVE_STORE": "redis", "PROACTIVE_REDIS_URL": f"redis://127.0.0.1:{contract_redis.port}/0"}
    offers = CopilotRuntime(config, environ=environ, argv=[]).offers
    await offers.start()
    return offers


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def service(backend: str, contract_redis: RedisServer) -> AsyncIterator[OfferService]:
    offers = await _service(backend, contract_redis, _config())
    yield offers
    await offers.close()


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def _saves(user: str, session: str, at: float, count: int = 3, first: int = 0) -> NormalisedBatch:
    """``count`` clicks on "Save changes" a second apart (the ``first``-th on): three make the
    story. Each event has its own id, the same each time it is made (a retried batch)."""
    events = [posthog_event("$autocapture", ts=at - 10 + n, text="Save changes", user=user, session=session,
                            uuid=f"{user}-{session}-{n}")
              for n in range(first, first + count)]
    return normalise_batch(parse_capture_payload({"api_key": "k", "batch": events}), received_at=at)


async def _received(subscription: Subscription, *, expected: bool = True) -> List[Offer]:
    """What reaches the stream: each offer as it comes, until nothing more for ``QUIET_S``
    (the first waited for up to ``WAIT_S`` when one is ``expected``)."""
    offers: List[Offer] = []
    while True:
        delivery = await subscription.next(WAIT_S if expected and not offers else QUIET_S)
        if not isinstance(delivery, Offer):
            return offers
        offers.append(delivery)


async def _first(subscription: Subscription) -> Offer:
    delivery = await subscription.next(WAIT_S)
    assert isinstance(delivery, Offer), delivery
    return delivery


async def test_the_third_save_makes_one_offer_on_the_open_stream(service: OfferService):
    user, now = _user(), time.time()
    stream = await service.open_stream(user, None, now=now)
    await service.ingest(_saves(user, "s1", now, count=2), now=now)
    await service.ingest(_saves(user, "s1", now + 1, count=1, first=2), now=now + 1)
    offers = await _received(stream)
    assert [(o.trigger_id, o.user_id, o.session_id) for o in offers] == [(TRIGGER, user, "s1")]
    await service.ingest(_saves(user, "s1", now + 2, count=3, first=3), now=now + 2)  # the gate is closed now
    assert await _received(stream, expected=False) == []
    await service.close_stream(stream)


async def _report_shown(service: OfferService, offer: Offer, now: float) -> None:
    """What the toast does as it appears (``POST /offer/event``)."""
    await service.run(offer.user_id, lambda engine: engine.journal.report(offer.user_id, offer.offer_id, "shown", None,
                                                                          now=now), now=now)


async def test_an_offer_made_while_no_stream_is_open_goes_to_the_next_stream_once(service: OfferService):
    user, now = _user(), time.time()
    await service.ingest(_saves(user, "s1", now), now=now)
    first = await service.open_stream(user, None, now=now + 1)
    [offer] = await _received(first)
    assert offer.session_id == "s1"
    await _report_shown(service, offer, now + 1)
    second = await service.open_stream(user, None, now=now + 2)
    assert await _received(second, expected=False) == []  # taken by the first stream, which showed it
    for stream in (first, second):
        await service.close_stream(stream)


async def test_an_offer_no_tab_showed_goes_to_each_new_tab_until_one_shows_it_within_the_pending_ttl(
        service: OfferService):
    """The tab it reached closed before showing it (or its replica died while its stream
    still counted as open): the next new tab gets it, once, as a parked offer."""
    user, now = _user(), time.time()
    closed = await service.open_stream(user, None, now=now)
    await service.ingest(_saves(user, "s1", now), now=now)
    offer = await _first(closed)
    await service.close_stream(closed)  # gone without reporting it shown
    new_tab = await service.open_stream(user, None, now=now + 2)
    assert [o.offer_id for o in await _received(new_tab)] == [offer.offer_id]
    back = await service.open_stream(user, offer.offer_id, now=now + 2)  # a reconnect has had it
    assert await _received(back, expected=False) == []
    await _report_shown(service, offer, now + 2)
    after_shown = await service.open_stream(user, None, now=now + 3)
    assert await _received(after_shown, expected=False) == []
    for stream in (new_tab, back, after_shown):
        await service.close_stream(stream)

    late_user = _user()  # one no tab showed, past pending_ttl_s (120 s): a new tab does not get it
    closed = await service.open_stream(late_user, None, now=now)
    await service.ingest(_saves(late_user, "s2", now), now=now)  # session ids are PostHog's: unique
    await _first(closed)
    await service.close_stream(closed)
    # 130: Redis's replica takes a pending offer for a stream it holds at its own clock's time
    late_tab = await service.open_stream(late_user, None, now=now + 130)
    assert await _received(late_tab, expected=False) == []
    await service.close_stream(late_tab)


async def test_a_stream_back_with_last_event_id_gets_exactly_what_it_missed(service: OfferService):
    user, now = _user(), time.time()
    kept = await service.open_stream(user, None, now=now)  # another tab: the offers are delivered, not parked
    dropped = await service.open_stream(user, None, now=now)
    await service.ingest(_saves(user, "s1", now), now=now)
    seen = await _first(dropped)
    await service.close_stream(dropped)
    await service.ingest(_saves(user, "s2", now + 1), now=now + 1)
    await service.ingest(_saves(user, "s3", now + 2), now=now + 2)
    delivered = await _received(kept)
    assert [o.session_id for o in delivered] == ["s1", "s2", "s3"]
    back = await service.open_stream(user, seen.offer_id, now=now + 3)
    assert [o.offer_id for o in await _received(back)] == [o.offer_id for o in delivered[1:]]
    unknown = await service.open_stream(user, "no-such-offer", now=now + 3)
    assert await _received(unknown, expected=False) == []  # replaying everything could repeat toasts already seen
    for stream in (kept, back, unknown):
        await service.close_stream(stream)


async def test_a_stream_gone_before_its_first_offer_comes_back_with_its_cursor_for_what_it_missed(
        service: OfferService):
    user, now = _user(), time.time()
    kept = await service.open_stream(user, None, now=now)  # another tab: the offers are delivered, not parked
    gone = await service.open_stream(user, None, now=now)
    cursor = stream_cursor(gone.opened_at)  # the first event id it sent
    await service.close_stream(gone)
    await service.ingest(_saves(user, "s1", now + 1), now=now + 1)
    await service.ingest(_saves(user, "s2", now + 2), now=now + 2)
    delivered = await _received(kept)
    back = await service.open_stream(user, cursor, now=now + 3)
    assert [o.offer_id for o in await _received(back)] == [o.offer_id for o in delivered] and len(delivered) == 2
    for stream in (kept, back):
        await service.close_stream(stream)


async def test_an_offer_no_stream_opened_for_expires_once_and_is_counted(service: OfferService):
    user, now = _user(), time.time()
    await service.ingest(_saves(user, "s1", now), now=now)
    later = now + 121  # past pending_ttl_s (120)
    await service.tick(now=later)
    stream = await service.open_stream(user, None, now=later + 1)
    assert await _received(stream, expected=False) == []
    totals = (await service.totals(day_of(now), day_of(later)))[TRIGGER]
    assert totals["stage:fired"] >= 1 and totals["stage:expired"] >= 1
    await service.close_stream(stream)


async def test_each_stage_is_counted_once_in_the_totals(backend: str, contract_redis: RedisServer):
    service = await _service(backend, contract_redis, _config())  # its own counts, from zero
    try:
        user, now = _user(), time.time()
        stream = await service.open_stream(user, None, now=now)
        await service.ingest(_saves(user, "s1", now), now=now)
        offer = await _first(stream)
        await service.ingest(_saves(user, "s1", now), now=now)  # posthog-js sent the batch again
        assert await service.run(user, lambda e: e.journal.report(user, offer.offer_id, "shown", None, now=now + 1),
                                 now=now + 1)
        assert not await service.run(user, lambda e: e.journal.report(user, offer.offer_id, "shown", None, now=now + 2),
                                     now=now + 2)
        day = day_of(offer.created_at)
        totals = (await service.totals(day, day))[TRIGGER]
        assert {key: totals.get(key) for key in ("stage:fired", "stage:delivered", "stage:shown")} == {
            "stage:fired": 1, "stage:delivered": 1, "stage:shown": 1}
        await service.close_stream(stream)
    finally:
        await service.close()


async def test_operations_see_what_earlier_ones_left_for_that_user_only(service: OfferService):
    user, other, now = _user(), _user(), time.time()
    await service.ingest(_saves(user, "s1", now, count=2), now=now)
    await service.ingest(_saves(user, "s1", now, count=2), now=now)  # a retried batch counts once
    await service.ingest(_saves(other, "s9", now, count=1), now=now)
    seen = await service.run(user, lambda e: [a.title for a in e.activity.recent_actions("s1")], now=now)
    assert seen == ["Save changes", "Save changes"]
    assert await service.run(user, lambda e: e.activity.latest_session(user), now=now) == "s1"
    assert await service.run(other, lambda e: e.activity.latest_session(other), now=now) == "s9"
    nobody = _user()
    assert await service.run(nobody, lambda e: e.activity.latest_session(nobody), now=now) is None


async def test_the_daily_cap_holds_across_sessions(backend: str, contract_redis: RedisServer):
    service = await _service(backend, contract_redis, _config(per_user_per_day=2))
    try:
        user, now = _user(), time.time()
        stream = await service.open_stream(user, None, now=now)
        for n in range(3):
            await service.ingest(_saves(user, f"s{n}", now + n), now=now + n)
        assert [o.session_id for o in await _received(stream)] == ["s0", "s1"]
        await service.close_stream(stream)
    finally:
        await service.close()


async def test_a_closed_stream_gets_nothing_and_close_ends_every_stream(backend: str, contract_redis: RedisServer):
    service = await _service(backend, contract_redis, _config())
    user, now = _user(), time.time()
    open_one = await service.open_stream(user, None, now=now)
    closed = await service.open_stream(user, None, now=now)
    await service.close_stream(closed)
    await service.ingest(_saves(user, "s1", now), now=now)
    assert [o.session_id for o in await _received(open_one)] == ["s1"]
    assert await closed.next(QUIET_S) is None
    await service.close()
    assert await open_one.next(WAIT_S) is CLOSED


async def test_a_new_service_on_the_same_store_keeps_what_the_last_one_left(backend: str, contract_redis: RedisServer):
    """A restart: with ``store: redis`` cooldowns, caps and pending offers survive it; in one
    process (``memory``) they go with it, and the story makes its offer again."""
    user, now = _user(), time.time()
    first = await _service(backend, contract_redis, _config())
    await first.ingest(_saves(user, "s1", now), now=now)  # parked: no stream is open
    await first.close()
    second: Optional[OfferService] = None
    try:
        if backend == "redis":  # the same Redis: not flushed
            environ = {"PROACTIVE_STORE": "redis", "PROACTIVE_REDIS_URL": f"redis://127.0.0.1:{contract_redis.port}/0"}
            second = CopilotRuntime(_config(), environ=environ, argv=[]).offers
            await second.start()
        else:
            second = await _service(backend, contract_redis, _config())
        stream = await second.open_stream(user, None, now=now + 1)
        received = await _received(stream, expected=backend == "redis")
        await second.ingest(_saves(user, "s1", now + 2, first=3), now=now + 2)
        received += await _received(stream, expected=backend == "memory")
        if backend == "redis":
            assert [o.session_id for o in received] == ["s1"]  # the parked offer, and the gate still closed
        else:
            assert [o.session_id for o in received] == ["s1"] and received[0].created_at >= now + 2
        await second.close_stream(stream)
    finally:
        if second is not None:
            await second.close()

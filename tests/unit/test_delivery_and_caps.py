"""Offers nobody saw yet, streams that reconnect, and caps across sessions."""

import logging
from dataclasses import replace

import pytest

from addons.offers.caps import OfferCaps
from addons.config import OfferCapsConfig
from addons.offers.delivery import DeliveryHub
from addons.offers.offer import CURSOR_MARGIN_S, Offer, cursor_time, stream_cursor
from addons.stores.memory import InMemoryOfferHistory, InMemoryOfferStore
from addons.offers.engine import ProactiveEngine

T0 = 1779188762.919


def saves(ph, *offsets, session="sess-1"):
    return [ph.save(T0 + o, session=session) for o in offsets]


def fire(engine, ph, session="sess-1", at=3.0):
    """Three saves in ``session``; returns the offers the last one produced."""
    return engine.ingest(ph.batch(saves(ph, at - 2, at - 1, at, session=session), received_at=T0 + at), now=T0 + at)


async def test_an_offer_with_no_open_stream_waits_and_costs_nothing(engine, ph):
    [offer] = fire(engine, ph)
    debug = engine.debug("user-1", now=T0 + 3)
    assert debug["pending_offer"] is True
    assert debug["state"]["state"] == "thinking" and debug["state"]["cooldown_active"] is False
    assert debug["last_offer"] is None and engine.stores.offer_history.user_count() == 0
    assert fire(engine, ph, at=4.0) == []  # one offer waits per session, not one per save

    stream = engine.subscribe("user-1", now=T0 + 30)
    assert await stream.next(timeout=0.05) == offer
    debug = engine.debug("user-1", now=T0 + 30)
    assert debug["state"]["state"] == "proactive_assistance" and debug["pending_offer"] is False
    assert debug["last_offer"]["offer_id"] == offer.offer_id
    assert engine.stores.offer_history.user_count() == 1


async def test_a_pending_offer_expires_after_its_ttl_without_a_cooldown(engine, ph, caplog):
    caplog.set_level(logging.INFO, logger="addons")
    [offer] = fire(engine, ph)
    engine.tick(now=T0 + 124)  # fired at T0+3, kept 120 s
    assert f"proactive offer expired: offer={offer.offer_id} user=user-1" in caplog.text

    assert engine.tick(now=T0 + 125).offers == 0  # not fired again on the same evidence
    stream = engine.subscribe("user-1", now=T0 + 126)
    assert await stream.next(timeout=0.05) is None
    assert engine.debug("user-1", now=T0 + 126)["state"]["cooldown_active"] is False
    assert engine.stores.offer_history.user_count() == 0
    [again] = fire(engine, ph, at=128.0)  # new saves with the tab open: the toast comes at once
    assert await stream.next(timeout=0.05) == again


async def test_a_pending_offer_is_dropped_if_the_user_is_chatting_when_the_tab_opens(engine, ph, caplog):
    caplog.set_level(logging.INFO, logger="addons")
    [offer] = fire(engine, ph)
    engine.on_chat_message("user-1")  # reactive now: no offer may interrupt
    stream = engine.subscribe("user-1", now=T0 + 10)
    assert await stream.next(timeout=0.05) is None
    assert f"proactive pending offer dropped: offer={offer.offer_id} user=user-1 reason=v2_state_reactive" in caplog.text


async def test_last_event_id_replays_exactly_what_the_stream_missed(engine, ph):
    other_tab = engine.subscribe("user-1", now=T0)
    tab = engine.subscribe("user-1", now=T0)
    [first] = fire(engine, ph, session="sess-1")
    assert await tab.next(timeout=0.05) == first
    engine.hub.unsubscribe(tab)  # the connection drops
    [missed] = fire(engine, ph, session="sess-2", at=10.0)  # the other tab gets it live
    assert await other_tab.next(timeout=0.05) == first
    assert await other_tab.next(timeout=0.05) == missed

    resumed = engine.subscribe("user-1", last_event_id=first.offer_id, now=T0 + 12)
    assert await resumed.next(timeout=0.05) == missed
    assert await resumed.next(timeout=0.05) is None


async def test_an_unknown_last_event_id_replays_nothing():
    hub = DeliveryHub(InMemoryOfferStore(replay_s=60))
    offer = Offer("o1", "u", "s", "t", "body", (), T0)
    hub.publish(offer, now=T0)
    assert await hub.subscribe("u", last_event_id="not-an-offer", now=T0 + 1).next(timeout=0.01) is None
    assert await hub.subscribe("u", last_event_id="o0", now=T0 + 1).next(timeout=0.01) is None


async def test_replay_history_ends_with_its_window():
    hub = DeliveryHub(InMemoryOfferStore(replay_s=60))
    first, second = (Offer(i, "u", "s", "t", "body", (), T0) for i in ("o1", "o2"))
    hub.publish(first, now=T0)
    hub.publish(second, now=T0 + 1)
    hub.offers.expire(T0 + 62)
    assert await hub.subscribe("u", last_event_id="o1", now=T0 + 62).next(timeout=0.01) is None


def test_subscriptions_leave_nothing_behind():
    hub = DeliveryHub(InMemoryOfferStore())
    streams = [hub.subscribe(f"user-{i % 7}") for i in range(1000)]
    for stream in streams:
        hub.unsubscribe(stream)
    assert hub.subscriber_count() == 0 and hub._subscribers == {}


@pytest.fixture
def capped(config, mono):
    """The shipped config with the polite daily cap of 3 and no other limit."""
    capped_config = replace(config, caps=OfferCapsConfig(per_user_per_day=3, per_session_per_hour=6, min_gap_s=0))
    engine = ProactiveEngine(capped_config, clock=lambda: T0)
    engine.subscribe("user-1", now=T0)
    return engine


def test_a_fourth_offer_within_a_day_is_suppressed_and_debug_says_why(capped, ph, caplog):
    caplog.set_level(logging.INFO, logger="addons")
    for n in range(3):
        assert len(fire(capped, ph, session=f"sess-{n}", at=10.0 * (n + 1))) == 1
    assert fire(capped, ph, session="sess-3", at=40.0) == []
    assert fire(capped, ph, session="sess-3", at=41.0) == []
    debug = capped.debug("user-1", now=T0 + 41)
    assert debug["caps"] == {"open": False, "reason": "daily cap: 3 of 3 offers to this user in the last 24 h"}
    assert debug["triggers"][0]["fired"] is True  # the trigger matched; the cap held it back
    assert caplog.text.count("proactive offer suppressed: trigger=bulk_edit_opportunity user=user-1 session=sess-3") == 1


def test_the_daily_cap_frees_a_slot_after_24_hours():
    caps = OfferCaps(OfferCapsConfig(per_user_per_day=1, per_session_per_hour=1, min_gap_s=0), InMemoryOfferHistory())
    caps.record("u", "s1", T0)
    assert not caps.check("u", "s2", T0 + 86399).allowed
    assert caps.check("u", "s2", T0 + 86400).allowed


def test_the_hourly_session_cap_and_the_minimum_gap():
    caps = OfferCaps(OfferCapsConfig(per_user_per_day=10, per_session_per_hour=2, min_gap_s=600), InMemoryOfferHistory())
    caps.record("u", "s1", T0)
    gap = caps.check("u", "s2", T0 + 60)
    assert not gap.allowed and gap.reason == "minimum gap: the last offer was 60 s ago, less than 600 s"
    caps.record("u", "s1", T0 + 700)
    hourly = caps.check("u", "s1", T0 + 1400)
    assert not hourly.allowed and hourly.reason.startswith("hourly cap: 2 of 2 offers in this session")
    assert caps.check("u", "s2", T0 + 1400).allowed  # another session may still get one
    assert caps.check("u", "s1", T0 + 3601).allowed


def test_caps_forget_the_least_recently_offered_users():
    caps = OfferCaps(OfferCapsConfig(), InMemoryOfferHistory(max_users=2))
    for user in ("a", "b", "c"):
        caps.record(user, "s", T0)
    assert caps.history.user_count() == 2 and caps.check("a", "s", T0 + 1).allowed


def test_a_stream_cursor_reaches_back_its_margin_before_the_stream_opened():
    since = cursor_time(stream_cursor(T0))
    assert since is not None and T0 - CURSOR_MARGIN_S - 0.001 < since <= T0 - CURSOR_MARGIN_S
    hub = DeliveryHub(InMemoryOfferStore())
    assert hub.subscribe("u1", now=T0).opened_at == T0


@pytest.mark.parametrize("last_event_id", ["o1", "since-", "since-12x", "since--5", "since- 1", "since-" + "9" * 17,
                                           "SINCE-1", "since-\u00b2", "since-\u0661\u0662", "since-1\n2"])
def test_whatever_a_client_sends_as_last_event_id_is_a_cursor_or_nothing_and_never_an_error(last_event_id):
    assert cursor_time(last_event_id) is None
    offers = InMemoryOfferStore()
    offers.record_delivered(Offer("o1", "u1", "s1", "t1", "body", (), T0), T0)
    hub = DeliveryHub(offers)
    subscription = hub.subscribe("u1", last_event_id=last_event_id, now=T0 + 1)
    assert subscription.drain() == [] and hub.subscriber_count("u1") == 1


def test_a_cap_refusal_is_logged_again_after_an_offer_got_through_in_the_session(config, mono, ph, caplog):
    caplog.set_level(logging.INFO, logger="addons")
    engine = ProactiveEngine(replace(config, caps=OfferCapsConfig(per_user_per_day=1, per_session_per_hour=6, min_gap_s=0)),
                             clock=lambda: T0)
    engine.subscribe("user-1", now=T0)
    refused = "proactive offer suppressed: trigger=bulk_edit_opportunity user=user-1 session=sess-1 reason=daily cap"
    assert len(fire(engine, ph, session="sess-0", at=10.0)) == 1
    assert fire(engine, ph, session="sess-1", at=20.0) == [] and fire(engine, ph, session="sess-1", at=30.0) == []
    assert caplog.text.count(refused) == 1
    day = 86_400.0
    mono.advance(day)
    assert len(fire(engine, ph, session="sess-1", at=day + 30)) == 1  # a day on: the cap let one through
    mono.advance(config.session.interaction_timeout_s + 1)
    engine.tick(now=T0 + day + 35)  # the toast timed out: cooling down from here
    mono.advance(config.session.cooldown_period_s + 1)  # the session may be offered again, the caps permitting
    assert fire(engine, ph, session="sess-1", at=day + 40) == []
    assert engine.debug("user-1", now=T0 + day + 40)["gate"]["open"] is True
    assert caplog.text.count(refused) == 2

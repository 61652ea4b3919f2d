"""Moving one user's whole state between store bundles (``addons.stores.user_state``): the
export is JSON, and the bundle it is imported into (another engine: a "replica", with its own
monotonic clock origin) behaves for that user as the first one would have.

Time: the engine's ``now`` is wall-clock, passed explicitly; ``mono`` (conftest) is the
monotonic clock of ``SessionState`` and the gate, shared by both engines of a test. A replica
with another origin is simulated by moving ``mono`` between the export and the import
(wall-clock time stands still), so a timer carried over unconverted would be off by the shift.
"""

from __future__ import annotations

from collections import Counter

import copy
import json
import math
from dataclasses import asdict, replace
from typing import Any, Dict, List, Tuple

import pytest

from addons.insights.journal import UnknownOffer
from addons.insights.records import SHOWN, OfferRecord, day_of
from addons.offers.engine import ProactiveEngine
from addons.offers.offer import Offer, TourOffer
from addons.stores.memory import (
    InMemoryOfferLedger, InMemoryOfferStore, RevisedTickSchedule, SessionPlan, UserOffers, memory_stores,
)
from addons.stores.protocols import NOW, Stores
from addons.stores.redis.units import document_json
from addons.stores.redis.user_states import compact_json
from addons.stores.memory.activity import ENTRY_FIELDS
from addons.stores.user_state import (
    FORMAT, MONOTONIC_FIELDS, EarlierSection, KnownSession, export_user, import_user, kept_until, section_revisions, session_revisions,
)

T0 = 1779188762.919
USER, SID = "user-1", "sess-1"  # posthog_event's defaults
TRIGGER = "bulk_edit_opportunity"
TIMEOUT, COOLDOWN = 10.0, 20.0  # proactive.yml's session timings
SHIFT = 3600.0  # how far the other replica's monotonic clock is from this one's
SECTIONS = ("activity", "session_states", "tick_plan", "expired_unseen", "offer_history", "pending",
            "delivered", "first_name")


def _engine(config, *, incremental: bool = True, revised: bool = False) -> ProactiveEngine:
    """``revised``: on the stores a unit of work's bundle has."""
    return ProactiveEngine(config, stores=memory_stores(config, revised=revised), clock=lambda: T0,
                           incremental=incremental)


def _saves(ph, *offsets: float, **kw: Any) -> List[Dict[str, Any]]:
    return [ph.save(T0 + o, **kw) for o in offsets]


def _ingest(engine: ProactiveEngine, ph, events: List[Dict[str, Any]], at: float) -> List[Offer]:
    return engine.ingest(ph.batch(events, received_at=T0 + at), now=T0 + at)


def _move(a: ProactiveEngine, mono, at: float, *, shift: float = SHIFT, incremental: bool = True) -> ProactiveEngine:
    """Export the user from ``a`` at wall time T0+at, through JSON, into a new engine built
    on a monotonic clock ``shift`` away."""
    state = json.loads(json.dumps(export_user(a.stores, USER, now=T0 + at), allow_nan=False))
    mono.now += shift
    b = _engine(a.config, incremental=incremental)
    import_user(b.stores, state, now=T0 + at)
    return b


def _same(x: Any, y: Any, path: str = "") -> None:
    """Equal, floats to within conversion noise (wall-clock values are ~1.8e9)."""
    if isinstance(x, float) or isinstance(y, float):
        assert isinstance(x, (int, float)) and isinstance(y, (int, float)), path
        assert math.isclose(x, y, rel_tol=0, abs_tol=1e-5), f"{path}: {x} != {y}"
    elif isinstance(x, dict):
        assert isinstance(y, dict) and list(x) == list(y), f"{path}: keys {list(x)} != {list(y) if isinstance(y, dict) else y}"
        for key in x:
            _same(x[key], y[key], f"{path}.{key}")
    elif isinstance(x, list):
        assert isinstance(y, list) and len(x) == len(y), f"{path}: {x} != {y}"
        for n, (a, b) in enumerate(zip(x, y)):
            _same(a, b, f"{path}[{n}]")
    else:
        assert x == y, f"{path}: {x!r} != {y!r}"


def _offer_fields(offer: Offer) -> Dict[str, Any]:
    data = offer.to_stored_dict()
    del data["offer_id"]
    return data


def _rich_story(engine: ProactiveEngine, ph, mono) -> Tuple[Offer, Offer, Offer]:
    """Something in every per-user store: a baseline adoption, an offer that expired unseen
    (sess-0), one shown (sess-1, PROACTIVE), one parked (sess-2), and a first name."""
    name = ph.event("$identify", ts=T0 - 300, **{"$set": {"first_name": "Ada"}})
    apply_click = ph.event(ts=T0 - 200, text="Apply to 3", session="sess-0")
    _ingest(engine, ph, [name, apply_click], -200)
    [expired] = _ingest(engine, ph, _saves(ph, 1, 2, 3, session="sess-0"), 3)
    mono.advance(127)
    engine.tick(now=T0 + 130)  # nobody opened a tab: it expires, sess-0 is marked
    subscription = engine.subscribe(USER, now=T0 + 140)
    [shown] = _ingest(engine, ph, _saves(ph, 141, 142, 143), 143)
    mono.advance(20)
    engine.unsubscribe(subscription)
    [parked] = _ingest(engine, ph, _saves(ph, 160, 161, 162, session="sess-2"), 163)
    mono.advance(2)
    return expired, shown, parked


# -- 1. the export is JSON, and an import gives it back ------------------------------------


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full-rescan"])
def test_an_export_through_json_imports_into_a_fresh_bundle_that_exports_the_same(config, mono, ph, incremental):
    a = _engine(config, incremental=incremental)
    _rich_story(a, ph, mono)
    state = export_user(a.stores, USER, now=T0 + 165)
    for section in SECTIONS:
        assert state[section] or (section == "tick_plan" and not incremental), section  # the full rescan plans nothing
    assert all(state["ledger"].values()) and len(state["activity"]) == 3
    text = json.dumps(state, allow_nan=False)

    mono.now += SHIFT
    b = memory_stores(config)
    import_user(b, json.loads(text), now=T0 + 165)
    _same(export_user(b, USER, now=T0 + 165), state)

    # The monotonic timers arrived on the new clock: the same wall moments, SHIFT later.
    for session_id in ("sess-0", "sess-1", "sess-2"):
        before, after = a.stores.session_states.get(session_id), b.session_states.get(session_id)
        assert before is not None and after is not None
        for field in MONOTONIC_FIELDS:
            x, y = before.to_dict(), after.to_dict()
            for key in field:
                x, y = x[key], y[key]
            assert y == pytest.approx(x + SHIFT, abs=1e-5), (session_id, field)
        assert after.metadata == before.metadata and after.current_state is before.current_state


def test_the_document_as_redis_keeps_it_reads_back_exactly(config, mono, ph):
    """``compact_json`` (ujson) writes what the stdlib reads back as the same values: every
    float to the bit (timers and timestamps are ~1.8e9 with sub-millisecond parts), names and
    texts beyond ASCII, URLs."""
    engine = _engine(config)
    _rich_story(engine, ph, mono)
    engine.stores.first_names.set(USER, "Zoë \u2028 <b>/ 名前")
    state = export_user(engine.stores, USER, now=T0 + 165.000123456)
    text = compact_json(state)
    assert text.isascii() and ": " not in text and ", " not in text and "\\/" not in text
    assert json.loads(text) == state == json.loads(json.dumps(state))
    timers = [1779188762.9190001, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, -0.0, 2 ** 63 + 1]
    assert json.loads(compact_json(timers)) == timers


def test_an_export_is_a_snapshot_that_later_changes_to_a_session_state_leave_alone(config, mono, ph):
    """The gate changes a session's metadata in place (the last offer, the evidence consumed):
    an export taken before must not change with it, or a unit comparing the new export with
    the one it last wrote would see no change and leave Redis behind."""
    engine = _engine(config)
    _rich_story(engine, ph, mono)
    state = export_user(engine.stores, USER, now=T0 + 165)
    before = copy.deepcopy(state)
    engine.gate.record_offer("sess-1", "later-offer", "another_trigger", T0 + 166, evidence_until=T0 + 166)
    assert state == before
    after = export_user(engine.stores, USER, now=T0 + 165)
    assert after["session_states"]["sess-1"]["metadata"] != before["session_states"]["sess-1"]["metadata"]


def test_the_gate_watch_is_carried_on_the_new_monotonic_clock(config, mono, ph):
    a = _engine(config)
    a.subscribe(USER, now=T0)
    _ingest(a, ph, _saves(ph, 1, 2, 3), 3)  # PROACTIVE: watched until its timeout
    watch = a.stores.tick_plan.export_session(SID).watch_until
    state = export_user(a.stores, USER, now=T0 + 3)
    assert state["tick_plan"][SID]["watch_until"] == pytest.approx(T0 + 3 + TIMEOUT, abs=1e-5)
    mono.now += SHIFT
    b = memory_stores(config)
    import_user(b, state, now=T0 + 3)
    assert b.tick_plan.export_session(SID).watch_until == pytest.approx(watch + SHIFT, abs=1e-5)


# -- 2. the same behaviour on the other replica ------------------------------------------------


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full-rescan"])
def test_two_saves_on_one_replica_and_the_third_on_another_make_the_one_offer(config, mono, ph, incremental):
    saves = _saves(ph, 1, 2, 3)
    single = _engine(config, incremental=incremental)
    expected = [_ingest(single, ph, [save], n) for n, save in enumerate(saves, 1)]
    assert [len(offers) for offers in expected] == [0, 0, 1]

    a = _engine(config, incremental=incremental)
    assert _ingest(a, ph, saves[:1], 1) == [] and _ingest(a, ph, saves[1:2], 2) == []
    b = _move(a, mono, 2, incremental=incremental)
    assert _ingest(b, ph, saves[1:2], 2.5) == []  # posthog-js retried the second save's batch: it counts once
    offers = _ingest(b, ph, saves[2:], 3)
    assert len(offers) == 1
    assert _offer_fields(offers[0]) == _offer_fields(expected[2][0])
    assert _ingest(b, ph, _saves(ph, 4), 4) == []  # and not again for a fourth


CHECKS = (12.9, 13.1, 20.0, 33.0, 33.2, 40.0)  # seconds after T0; the offer is made at T0+3


def _timeline(engine: ProactiveEngine, mono, since: float) -> List[Tuple[float, int, int, str]]:
    """Tick at each of CHECKS, then ask the gate: (when, sessions evaluated, offers, verdict)."""
    rows = []
    for at in CHECKS:
        mono.advance(at - since)
        since = at
        report = engine.tick(now=T0 + at)
        rows.append((at, report.sessions, report.offers, engine.gate.check(SID).reason))
    return rows


@pytest.mark.parametrize("shift", [SHIFT, -SHIFT], ids=["later-origin", "earlier-origin"])
def test_the_timeout_and_the_cooldown_end_at_the_same_wall_moment_on_the_other_replica(config, mono, ph, shift):
    reference = _engine(config)
    reference.subscribe(USER, now=T0)
    assert len(_ingest(reference, ph, _saves(ph, 1, 2, 3), 3)) == 1
    mono.advance(5)
    assert reference.tick(now=T0 + 8).sessions == 1  # what the ingest changed; then only the gate watch is left
    expected = _timeline(reference, mono, 8)

    a = _engine(config)
    a.subscribe(USER, now=T0)
    assert len(_ingest(a, ph, _saves(ph, 1, 2, 3), 3)) == 1
    mono.advance(5)
    assert a.tick(now=T0 + 8).sessions == 1
    b = _move(a, mono, 8, shift=shift)
    b.subscribe(USER, now=T0 + 8)
    moved = _timeline(b, mono, 8)

    assert moved == expected
    # Timed out 10 s after the offer (tick at 13.1), cooled down 20 s after that tick.
    assert [reason for *_, reason in moved] == [
        "v2_state_proactive_assistance", "v2_cooldown_active", "v2_cooldown_active", "v2_cooldown_active", "ok", "ok",
    ]
    # The moved gate watch woke the session exactly when its state could move: the timeout,
    # then the cooldown's end.
    assert [sessions for _, sessions, _, _ in moved] == [0, 1, 0, 0, 1, 0]


# -- 3. what must survive the move ------------------------------------------------------------


async def test_a_parked_offer_is_delivered_when_the_stream_opens_on_the_other_replica(config, mono, ph):
    a = _engine(config)
    [offer] = _ingest(a, ph, _saves(ph, 1, 2, 3), 3)  # no tab open: parked
    b = _move(a, mono, 5)
    assert b.stores.offers.has_pending(SID) and b.stats()["pending_offers"] == 1
    subscription = b.subscribe(USER, now=T0 + 10)
    assert await subscription.next(timeout=0.1) == offer
    assert await subscription.next(timeout=0.01) is None
    assert b.gate.check(SID).reason == "v2_state_proactive_assistance"
    record = b.stores.ledger.get(offer.offer_id)
    assert record is not None and record.group == SHOWN
    assert b.gate.consumed(SID) == {TRIGGER: T0 + 3}


def test_a_parked_offer_expires_on_the_other_replica_when_it_would_have(config, mono, ph):
    a = _engine(config)
    _ingest(a, ph, _saves(ph, 1, 2, 3), 3)  # parked until T0+3+120
    b = _move(a, mono, 5)
    b.tick(now=T0 + 122.9)
    assert b.stores.offers.has_pending(SID)
    b.tick(now=T0 + 123)
    assert not b.stores.offers.has_pending(SID) and b.stores.offers.expired_unseen(SID)
    assert _ingest(b, ph, _saves(ph, 124), 124) == []
    assert not b.stores.offers.expired_unseen(SID)  # new activity: new evidence
    assert len(_ingest(b, ph, _saves(ph, 125, 126), 126)) == 1


async def test_a_stream_reconnecting_on_the_other_replica_gets_what_it_missed(config, mono, ph):
    a = _engine(config)
    a.subscribe(USER, now=T0)
    [first] = _ingest(a, ph, _saves(ph, 1, 2, 3), 3)
    mono.advance(TIMEOUT + 2)
    a.tick(now=T0 + 15)
    mono.advance(COOLDOWN + 1)
    a.tick(now=T0 + 36)
    [second] = _ingest(a, ph, _saves(ph, 40, 41, 42), 42)
    b = _move(a, mono, 45)

    assert b.stores.offers.missed_since(USER, first.offer_id, T0 + 50) == [second]
    assert b.stores.offers.missed_since(USER, second.offer_id, T0 + 50) == []
    subscription = b.subscribe(USER, last_event_id=first.offer_id, now=T0 + 50)
    assert await subscription.next(timeout=0.1) == second
    assert await subscription.next(timeout=0.01) is None
    assert b.stores.offers.missed_since(USER, first.offer_id, T0 + 42 + 300.5) == []  # replay_s holds


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full-rescan"])
def test_consumed_evidence_survives_the_move(config, mono, ph, incremental):
    a = _engine(config, incremental=incremental)
    a.subscribe(USER, now=T0)
    assert len(_ingest(a, ph, _saves(ph, 1, 2, 3), 3)) == 1
    b = _move(a, mono, 3, incremental=incremental)
    b.subscribe(USER, now=T0 + 3)
    for step in range(1, 9):  # past the timeout and the cooldown, inside the trigger's 120 s window
        mono.advance(10)
        assert b.tick(now=T0 + 3 + 10 * step).offers == 0
    assert b.debug(USER, now=T0 + 83)["triggers"][0]["reason"] == (
        "0 of 3 'save changes' actions on /projects within the last 120 s since its last offer"
    )
    assert len(_ingest(b, ph, _saves(ph, 90, 91, 92), 92)) == 1  # new saves still count


def test_the_daily_cap_reached_on_one_replica_still_refuses_on_the_other(config, mono, ph):
    capped = replace(config, caps=replace(config.caps, per_user_per_day=1))
    a = _engine(capped)
    a.subscribe(USER, now=T0)
    assert len(_ingest(a, ph, _saves(ph, 1, 2, 3), 3)) == 1
    b = _move(a, mono, 5)
    b.subscribe(USER, now=T0 + 5)
    assert _ingest(b, ph, _saves(ph, 10, 11, 12, session="sess-2"), 12) == []
    assert b.debug(USER, now=T0 + 12)["caps"]["reason"].startswith("daily cap: 1 of 1")

    fresh = _engine(capped)  # the control: without the history, the same saves make an offer
    fresh.subscribe(USER, now=T0 + 5)
    assert len(_ingest(fresh, ph, _saves(ph, 10, 11, 12, session="sess-2"), 12)) == 1


def _counts(engine: ProactiveEngine) -> Dict[str, int]:
    return engine.stores.ledger.totals(day_of(T0), day_of(T0)).get(TRIGGER, {})


def test_the_insights_records_survive_and_moved_actions_are_not_adoptions_again(config, mono, ph):
    a = _engine(config)
    _ingest(a, ph, [ph.event(ts=T0 - 1000, text="Apply to 3")], -1000)  # a baseline adoption
    a.subscribe(USER, now=T0)
    [offer] = _ingest(a, ph, _saves(ph, 1, 2, 3), 3)
    assert a.journal.report(USER, offer.offer_id, "shown", None, now=T0 + 3.1)
    b = _move(a, mono, 5)

    assert _counts(b) == {}  # the daily counts stay where they were made; the moved click is no new adoption
    assert not b.journal.report(USER, offer.offer_id, "shown", None, now=T0 + 6)  # already shown, on A
    assert b.journal.report(USER, offer.offer_id, "open_chat", None, now=T0 + 6)
    with pytest.raises(UnknownOffer):
        _engine(config).journal.report(USER, offer.offer_id, "open_chat", None, now=T0 + 6)
    _ingest(b, ph, [ph.event(ts=T0 + 10, text="Apply to 3")], 10)  # adopted after the offer: credited to it
    assert _counts(b) == {"stage:open_chat": 1, "stage:adopted": 1, "adopted:shown": 1}
    record = b.stores.ledger.get(offer.offer_id)
    assert record is not None and {"fired", "delivered", "shown", "open_chat", "adopted"} <= record.stages


def test_the_baseline_spell_survives_the_move(config, mono, ph):
    a = _engine(config)
    _ingest(a, ph, [ph.event(ts=T0, text="Apply to 3")], 0)
    b = _move(a, mono, 1)
    _ingest(b, ph, [ph.event(ts=T0 + 60, text="Apply to 3")], 60)  # the same spell (within 30 min)
    assert _counts(b) == {}
    _ingest(b, ph, [ph.event(ts=T0 + 1900, text="Apply to 3")], 1900)
    assert _counts(b) == {"adopted:baseline": 1}


class _RevisionWatch:
    """Exports the user whole after each step and checks ``section_revisions``' promise: a
    section whose store revision did not move is the section exported before. And the
    sessions' (``known_sessions``): an export that reuses the activity, states and plans whose
    revision stood still is the whole export."""

    PARTS = ("activity", "session_states", "tick_plan")

    def __init__(self, engine: ProactiveEngine) -> None:
        self.engine = engine
        self.last: Dict[str, Any] = {}
        self.revisions: Dict[str, int] = {}
        self.moved: Dict[str, int] = {key: 0 for key in section_revisions(engine.stores)}
        self.sessions: Dict[str, KnownSession] = {}
        self.reused = {part: 0 for part in self.PARTS}
        self.exported = {part: 0 for part in self.PARTS}
        self.sections: Dict[str, Any] = {}  # the unit's record of the document as written
        self.items: Dict[str, Counter[str]] = {"reused": Counter(), "exported": Counter()}

    def step(self, what: str, at: float) -> None:
        revisions = section_revisions(self.engine.stores)
        # One clock offset for the timers, as a replica's steady clocks give it: the test's two
        # clocks move apart (the monotonic one only when told), which is not what is checked here.
        whole = export_user(self.engine.stores, USER, now=T0 + at, clock_offset=T0)
        state = json.loads(json.dumps(whole))
        for key, revision in revisions.items():
            if self.revisions.get(key) == revision:
                assert state[key] == self.last[key], f"{what}: {key} changed, its store's revision did not"
            elif key in self.last:
                self.moved[key] += 1
        self.last, self.revisions = state, revisions
        # As a unit of work exports: the actions apart, each session's parts reused while
        # their revisions stand still.
        apart = export_user(self.engine.stores, USER, now=T0 + at, actions=False, clock_offset=T0)
        earlier = {key: EarlierSection(section.value, section.revision)
                   for key, section in self.sections.items() if section.revision is not None}
        reusing = export_user(self.engine.stores, USER, now=T0 + at, actions=False, clock_offset=T0,
                              earlier=earlier, known_sessions=self.sessions)
        assert reusing == apart, f"{what}: a part changed, its revision did not"
        for key, items in (("pending", reusing["pending"]), ("delivered", reusing["delivered"]),
                           ("records", reusing["ledger"]["records"])):
            section = earlier.get("ledger" if key == "records" else key)
            before = () if section is None else section.value["records"] if key == "records" else section.value
            for item in items:
                self.items["reused" if any(item is old for old in before) else "exported"][key] += 1
        # What a unit of work writes: each section, and each session of the per-session ones,
        # serialised again only when it changed; the same text as the whole state's JSON.
        assert document_json(reusing, self.sections, revisions) == compact_json(reusing), what
        parts = {"activity": {header["session_id"]: header for header in reusing["activity"]},
                 "session_states": reusing["session_states"], "tick_plan": reusing["tick_plan"]}
        for part, exported in parts.items():
            for session_id, value in exported.items():
                known = self.sessions.get(session_id)
                kept = None if known is None else {"activity": known.activity, "session_states": known.state,
                                                   "tick_plan": known.plan}[part]
                if kept is not None and value is kept:
                    self.reused[part] += 1
                else:
                    self.exported[part] += 1
        self.sessions = session_revisions(self.engine.stores, reusing, clock_offset=T0, known=self.sessions)


def test_a_section_whose_store_revision_stood_still_exports_the_same(config, mono, ph):
    engine = _engine(config, revised=True)
    journal = engine.journal
    watch = _RevisionWatch(engine)
    watch.step("nothing yet", 0)
    _ingest(engine, ph, [ph.event("$identify", ts=T0, **{"$set": {"first_name": "Ada"}})], 0)
    watch.step("a name", 0)
    [expired] = _ingest(engine, ph, _saves(ph, 1, 2, 3, session="sess-0"), 3)
    watch.step("parked", 3)
    mono.advance(127)
    engine.tick(now=T0 + 130)
    watch.step("expired unseen", 130)
    subscription = engine.subscribe(USER, now=T0 + 140)
    watch.step("a stream opened", 140)
    [shown] = _ingest(engine, ph, _saves(ph, 141, 142, 143), 143)
    watch.step("delivered", 143)
    for event in ("shown", "show_me"):
        assert journal.report(USER, shown.offer_id, event, None, now=T0 + 144)
        watch.step(event, 144)
    assert journal.tour_step(USER, shown.offer_id, 2)
    watch.step("a tour step", 145)
    assert journal.tour_ended(USER, shown.offer_id, "completed", None, 3)
    watch.step("the tour ended", 146)
    _ingest(engine, ph, [ph.event(ts=T0 + 150, text="Apply to 3")], 150)
    watch.step("adopted", 150)
    mono.advance(30)
    engine.unsubscribe(subscription)
    [parked] = _ingest(engine, ph, _saves(ph, 160, 161, 162, session="sess-2"), 163)
    watch.step("parked again", 163)
    engine.subscribe(USER, now=T0 + 170)
    watch.step("taken by a new stream", 170)
    mono.advance(600)
    engine.tick(now=T0 + 800)
    watch.step("the replay window passed", 800)
    _ingest(engine, ph, _saves(ph, 801, session="sess-2"), 801)
    watch.step("an ingest that offers nothing", 801)
    assert all(watch.moved.values()), watch.moved  # every revision moved, and was checked when it did not
    assert all(watch.reused.values()) and all(watch.exported.values()), (watch.reused, watch.exported)
    # In sections that moved, items that did not (no parked offer here outlives a change to the
    # offers; parked and delivered ones go through the same code).
    assert all(watch.items["exported"][key] for key in ("pending", "delivered", "records")), watch.items
    assert all(watch.items["reused"][key] for key in ("delivered", "records")), watch.items


def test_a_plan_s_revision_moves_with_every_change_to_it_and_only_then():
    plan = RevisedTickSchedule()
    assert plan.revision_of("s1") == 0
    changes = {
        "woken at once": lambda: plan.wake_at("s1", NOW),
        "woken later": lambda: plan.wake_at("s1", T0 + 50),
        "watched": lambda: plan.watch("s1", 5.0),
        "settled": lambda: plan.settle("s1", T0 + 60),
        "due (it leaves the plan)": lambda: plan.due(T0 + 61, 0.0),
        "imported": lambda: plan.import_session("s1", SessionPlan(next_tick=True, wake_at=None, watch_until=None)),
        "forgotten": lambda: plan.forget("s1"),
    }
    for what, change in changes.items():
        before, other = plan.revision_of("s1"), plan.revision_of("s2")
        change()
        after = plan.revision_of("s1")
        assert after > before and plan.revision_of("s2") == other, what
        plan.wake_at("s2", T0 + 1000 + len(what))  # another session's change leaves s1's revision where it was
        assert plan.revision_of("s1") == after, what
    assert plan.export_session("s1") is None
    # A revision that stood still means the same plan.
    plan.wake_at("s1", T0 + 90)
    revision, exported = plan.revision_of("s1"), plan.export_session("s1")
    plan.due(T0 + 10, 0.0), plan.export_session("s1"), plan.wake_at("s2", T0 + 5)
    assert plan.revision_of("s1") == revision and plan.export_session("s1") == exported


def test_a_session_state_kept_from_an_export_with_another_clock_offset_is_exported_again(config, mono, ph):
    """A replica's wall-minus-monotonic offset moves when the clock is stepped (NTP) or the
    process is preempted between its two readings: a state's timers kept from before would then
    differ from a fresh export's, and stay so in Redis until the session was touched again."""
    engine = _engine(config, revised=True)
    _ingest(engine, ph, _saves(ph, 1, 2, 3, session="sess-0"), 3)
    _ingest(engine, ph, _saves(ph, 10, session="sess-1"), 10)
    first = export_user(engine.stores, USER, now=T0 + 20, actions=False, clock_offset=T0)
    known = session_revisions(engine.stores, first, clock_offset=T0)
    again = export_user(engine.stores, USER, now=T0 + 20, actions=False, clock_offset=T0, known_sessions=known)
    assert again["session_states"]["sess-0"] is known["sess-0"].state  # nothing moved: reused
    stepped = T0 + 0.001
    reusing = export_user(engine.stores, USER, now=T0 + 20, actions=False, clock_offset=stepped, known_sessions=known)
    assert reusing == export_user(engine.stores, USER, now=T0 + 20, actions=False, clock_offset=stepped)
    assert reusing["session_states"]["sess-0"]["last_interaction_at"] == pytest.approx(
        first["session_states"]["sess-0"]["last_interaction_at"] + 0.001, abs=1e-6)


# -- 4. other users, twice, nobody --------------------------------------------------------------


def _other_user(engine: ProactiveEngine, ph) -> None:
    engine.subscribe("other", now=T0)
    _ingest(engine, ph, _saves(ph, 1, 2, 3, user="other", session="other-s"), 3)
    _ingest(engine, ph, _saves(ph, 4, user="other", session="other-s2"), 4)


def test_importing_a_user_leaves_the_other_users_alone(config, mono, ph):
    a, b = _engine(config), _engine(config)
    _rich_story(a, ph, mono)
    _other_user(b, ph)
    before = export_user(b.stores, "other", now=T0 + 165)
    assert before["activity"] and before["delivered"]
    sessions = b.stats()["sessions"]
    import_user(b.stores, export_user(a.stores, USER, now=T0 + 165), now=T0 + 165)
    _same(export_user(b.stores, "other", now=T0 + 165), before)
    assert b.stats()["sessions"] == sessions + 3


def test_importing_twice_is_importing_once(config, mono, ph):
    a = _engine(config)
    _rich_story(a, ph, mono)
    state = export_user(a.stores, USER, now=T0 + 165)
    once, twice = memory_stores(config), memory_stores(config)
    import_user(once, state, now=T0 + 165)
    import_user(twice, state, now=T0 + 165)
    import_user(twice, state, now=T0 + 165)
    _same(export_user(twice, USER, now=T0 + 165), export_user(once, USER, now=T0 + 165))
    assert twice.offers.pending_count() == 1 and twice.activity.session_count() == 3


async def test_a_user_imported_twice_gets_the_parked_offer_once(config, mono, ph):
    a = _engine(config)
    [offer] = _ingest(a, ph, _saves(ph, 1, 2, 3), 3)
    state = export_user(a.stores, USER, now=T0 + 5)
    b = _engine(config)
    import_user(b.stores, state, now=T0 + 5)
    import_user(b.stores, state, now=T0 + 5)
    subscription = b.subscribe(USER, now=T0 + 6)
    assert await subscription.next(timeout=0.1) == offer
    assert await subscription.next(timeout=0.01) is None


def test_an_unknown_user_exports_empty_and_imports_nothing(config, mono, ph):
    b = _engine(config)
    _other_user(b, ph)
    state = export_user(b.stores, "nobody", now=T0 + 5)
    assert state == {
        "format": FORMAT, "user_id": "nobody", "activity": [], "session_states": {}, "tick_plan": {}, "expired_unseen": {},
        "offer_history": [], "pending": [], "delivered": [], "first_name": None,
        "ledger": {"records": [], "latest": {}, "baselines": {}},
    }
    before = export_user(b.stores, "other", now=T0 + 5)
    import_user(b.stores, state, now=T0 + 5)
    assert export_user(b.stores, "other", now=T0 + 5) == before
    assert export_user(b.stores, "nobody", now=T0 + 5) == state
    assert b.stats() == {"sessions": 2, "subscribers": 1, "pending_offers": 0}


def test_an_import_replaces_what_the_bundle_held_for_the_user(config, mono, ph):
    a, b = _engine(config), _engine(config)
    _rich_story(a, ph, mono)
    _ingest(b, ph, _saves(ph, 1, 2, 3, session="stale"), 3)  # b's own, older view of the user: parked offer
    b.stores.first_names.set(USER, "Bob")
    state = export_user(a.stores, USER, now=T0 + 165)
    import_user(b.stores, state, now=T0 + 165)
    _same(export_user(b.stores, USER, now=T0 + 165), state)
    assert b.activity.user_of("stale") is None and b.stores.session_states.get("stale") is None
    assert not b.stores.offers.has_pending("stale") and b.stores.offers.pending_count() == 1


def test_an_imported_session_is_evicted_when_idle_as_it_would_have_been(config, mono, ph):
    a, b = _engine(config), _engine(config)
    _ingest(a, ph, _saves(ph, 1), 1)  # last seen at T0+1
    _ingest(b, ph, _saves(ph, 100, user="other", session="other-s"), 100)  # seen later, already in b
    import_user(b.stores, export_user(a.stores, USER, now=T0 + 100), now=T0 + 100)
    idle = config.activity.idle_session_s
    assert b.activity.evict(now=T0 + 1 + idle + 1) == 1
    assert b.activity.user_of(SID) is None and b.activity.user_of("other-s") == "other"


def test_a_state_of_another_format_is_refused(config, mono):
    state: Dict[str, Any] = export_user(memory_stores(config), USER, now=T0)
    state["format"] = FORMAT + 1
    with pytest.raises(ValueError, match="format"):
        import_user(memory_stores(config), state, now=T0)


def test_a_format_1_state_with_actions_as_objects_is_still_read(config, mono, ph):
    a, b = _engine(config), _engine(config)
    _rich_story(a, ph, mono)
    state = json.loads(json.dumps(export_user(a.stores, USER, now=T0 + 165)))
    assert all(isinstance(row, list) for session in state["activity"] for row in session["actions"])
    old = copy.deepcopy(state)  # as format 1 wrote it: each action an object, every field named
    old["format"] = 1
    for session in old["activity"]:
        stored = a.activity.export_session(session["session_id"])
        assert stored is not None
        objects = [dict(zip(ENTRY_FIELDS, entry)) for entry in stored.entries]
        session["actions"] = [{k: v for k, v in action.items() if k != "event_id"} | {"event_id": action["event_id"]}
                              for action in objects]
        session["event_ids"] = sorted(a["event_id"] for a in objects if a["event_id"] is not None)
    import_user(b.stores, old, now=T0 + 165)
    _same(export_user(b.stores, USER, now=T0 + 165), state)


def test_a_format_2_state_with_its_event_ids_listed_is_still_read_and_counts_a_retried_event_once(config, mono, ph):
    a, b = _engine(config), _engine(config)
    _rich_story(a, ph, mono)
    state = json.loads(json.dumps(export_user(a.stores, USER, now=T0 + 165)))
    old = copy.deepcopy(state)  # as format 2 wrote it: the event ids seen listed beside the rows
    old["format"] = 2
    for session in old["activity"]:
        session["event_ids"] = sorted(row[2] for row in session["actions"] if row[2] is not None)
    assert any(session["event_ids"] for session in old["activity"])
    import_user(b.stores, old, now=T0 + 165)
    _same(export_user(b.stores, USER, now=T0 + 165), state)
    session = old["activity"][-1]
    row = session["actions"][-1]
    retried = ph.event(ts=row[0], user=USER, session=session["session_id"], uuid=row[2])
    before = len(b.activity.recent_actions(session["session_id"]))
    b.ingest(ph.batch([retried], received_at=T0 + 166), now=T0 + 166)
    assert len(b.activity.recent_actions(session["session_id"])) == before


def test_only_in_memory_stores_are_moved(config, mono):
    stores: Stores = replace(memory_stores(config), offers=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="in-memory"):
        export_user(stores, USER, now=T0)


# -- the stores' own parts ----------------------------------------------------------------------


def test_an_offer_parked_again_with_a_later_expiry_expires_at_the_later_one():
    offers = InMemoryOfferStore()
    offer = Offer("o1", USER, SID, TRIGGER, "body", (), T0)
    offers.park(offer, expires_at=T0 + 10)
    offers.import_user(USER, UserOffers(pending=((offer, T0 + 20),), delivered=()))
    assert offers.expire(T0 + 15) == [] and offers.has_pending(SID)
    assert offers.expire(T0 + 20) == [offer] and not offers.has_pending(SID)


def test_a_users_ledger_part_is_what_the_bound_kept():
    ledger = InMemoryOfferLedger(max_offers=2)
    for n in range(3):
        ledger.add(OfferRecord(f"o{n}", USER, SID, TRIGGER, T0 + n))
    ledger.add(OfferRecord("x", "other", "other-s", TRIGGER, T0 + 5))  # pushes o1 out too
    ledger.note_baseline(USER, TRIGGER, T0 - 50)
    part = ledger.export_user(USER)
    assert [r.offer_id for r in part.records] == ["o2"]
    assert part.latest == {TRIGGER: "o2"} and part.baselines == {TRIGGER: T0 - 50}
    assert [r.offer_id for r in ledger.export_user("other").records] == ["x"]
    copy = InMemoryOfferLedger()
    copy.import_user(USER, part)
    latest = copy.latest(USER, TRIGGER)
    assert latest is not None and latest.offer_id == "o2" and copy.baseline_at(USER, TRIGGER) == T0 - 50
    ledger.note_baseline(USER, "t2", T0)
    ledger.note_baseline("other", "t3", T0)  # pushes the user's first baseline out
    assert ledger.export_user(USER).baselines == {"t2": T0}


def test_importing_a_session_tells_observers_it_was_restored_not_added(config, mono, ph):
    from test_store_contract import Recorder

    a, b = _engine(config), memory_stores(config)
    _ingest(a, ph, _saves(ph, 1, 2), 2)
    recorder = Recorder()
    b.activity.add_observer(recorder)
    state = export_user(a.stores, USER, now=T0 + 2)
    import_user(b, state, now=T0 + 2)
    assert recorder.calls == [("restored", SID), ("restored", SID)]
    import_user(b, state, now=T0 + 2)  # the session's contents are replaced
    assert recorder.calls[2:] == [("dropped", SID), ("restored", SID), ("restored", SID)]


def test_an_offer_is_stored_with_every_field_and_read_back_equal():
    offer = Offer(offer_id="o1", user_id=USER, session_id=SID, trigger_id="t1", body="Try bulk edit?",
                  tours=(TourOffer(id="tour", flow_id="flow", label="Show me"),), created_at=T0, evidence_until=T0 - 3)
    stored = offer.to_stored_dict()
    assert stored == {**asdict(offer), "tours": [asdict(t) for t in offer.tours]}  # by hand for speed: no field forgotten
    assert Offer.from_dict(json.loads(json.dumps(stored))) == offer
    assert "evidence_until" not in offer.to_dict()


def test_kept_until_is_when_the_last_capped_offer_or_creditable_record_runs_out():
    """What outlives the sessions: a delivered offer counts towards the caps for a day; an
    offer record or a baseline can be credited with an adoption for the adoption window."""
    assert kept_until({"offer_history": [], "ledger": {"records": [], "baselines": {}}}, adoption_window_s=1800) is None
    history = {"offer_history": [{"at": T0, "session_id": "s1"}, {"at": T0 + 50, "session_id": "s2"}]}
    assert kept_until(history, adoption_window_s=1800) == T0 + 50 + 86400
    ledger = {"ledger": {"records": [{"fired_at": T0}], "baselines": {"bulk_edit_opportunity": T0 + 100}}}
    assert kept_until(ledger, adoption_window_s=2 * 86400) == T0 + 100 + 2 * 86400
    assert kept_until(ledger, adoption_window_s=0) is None  # no trigger measures adoption: nothing to credit
    assert kept_until({**history, **ledger}, adoption_window_s=1800) == T0 + 50 + 86400

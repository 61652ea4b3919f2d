"""SessionGate rules, the engine end to end (ingest → offer → tour), the driver loop and the delivery hub.

Time: ``mono`` (conftest) is the monotonic clock autoplay-sdk's SessionState and the gate see;
the engine's own ``now`` (epoch seconds) is passed explicitly. No test sleeps more than ~0.05 s.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest
from autoplay_sdk.agent_state.v2 import AgentStateV2, SessionState

from addons.config import SessionTimings
from addons.errors import NoActiveTour, UnknownTour, UnknownUser
from addons.offers.delivery import CLOSED, DeliveryHub
from addons.offers.offer import Offer, TourOffer
from addons.offers.service import LocalOffers
from addons.rasa.driver import ProactiveDriver
from addons.offers.engagement import TourStart
from addons.offers.engine import ProactiveEngine, TickReport
from addons.offers.gate import ACTIVE_TOUR, SessionGate
from addons.stores.memory import InMemoryOfferStore, InMemorySessionStateStore

T0 = 1779188762.919
SID = "sess-1"
TIMEOUT, COOLDOWN = 10.0, 20.0  # the demo proactive.yml's session timings
BULK_EDIT_BODY = (
    "Updating projects one by one? There's a multi-select bulk edit you might not have seen "
    "— want me to show you?"
)
BULK_EDIT_TOUR = TourOffer(id="bulk_edit_tour", flow_id="bulk-edit-projects", label="Show me bulk edit")


@pytest.fixture
def gate(mono) -> SessionGate:
    return SessionGate(InMemorySessionStateStore(SessionTimings(TIMEOUT, COOLDOWN)))


def _state(gate: SessionGate, session_id: str = SID) -> SessionState:
    state = gate.store.get(session_id)
    assert state is not None
    return state


# -- SessionGate ------------------------------------------------------------------------------


def test_offer_fires_from_thinking(gate):
    assert gate.check(SID).allowed
    assert _state(gate).current_state is AgentStateV2.THINKING
    decision = gate.try_offer(SID, "bulk_edit_opportunity")
    assert (decision.allowed, decision.reason) == (True, "ok")
    assert _state(gate).current_state is AgentStateV2.PROACTIVE


def test_second_offer_while_proactive_is_refused_without_calling_the_sdk_transition(gate, monkeypatch):
    calls = []
    original = SessionState.transition_to_proactive

    def spy(self, trigger_id):
        calls.append(self.current_state)
        return original(self, trigger_id)

    monkeypatch.setattr(SessionState, "transition_to_proactive", spy)
    assert gate.try_offer(SID, "t1").allowed
    second = gate.try_offer(SID, "t2")  # would raise InvalidTransitionError if it reached the SDK
    assert (second.allowed, second.reason) == (False, "v2_state_proactive_assistance")
    assert calls == [AgentStateV2.THINKING]
    assert gate.check(SID).reason == "v2_state_proactive_assistance"


def test_interaction_timeout_returns_to_thinking_with_cooldown(gate, mono):
    gate.try_offer(SID, "t1")
    mono.advance(TIMEOUT - 0.5)
    assert gate.check(SID).reason == "v2_state_proactive_assistance"
    mono.advance(1.0)
    decision = gate.check(SID)
    assert (decision.allowed, decision.reason) == (False, "v2_cooldown_active")
    state = _state(gate)
    assert state.current_state is AgentStateV2.THINKING and state.thinking.cooldown_active
    assert gate.try_offer(SID, "t1").reason == "v2_cooldown_active"
    assert state.current_state is AgentStateV2.THINKING


def test_offer_may_fire_again_after_the_cooldown(gate, mono):
    gate.try_offer(SID, "t1")
    mono.advance(TIMEOUT + 0.5)
    assert gate.check(SID).reason == "v2_cooldown_active"  # the tick that starts the cooldown
    mono.advance(COOLDOWN - 1.0)
    assert gate.try_offer(SID, "t1").reason == "v2_cooldown_active"
    mono.advance(1.0)
    assert gate.try_offer(SID, "t1").allowed
    assert _state(gate).current_state is AgentStateV2.PROACTIVE


def test_snapshot_reports_the_remaining_cooldown(gate, mono):
    gate.try_offer(SID, "t1")
    mono.advance(TIMEOUT + 0.5)
    gate.check(SID)
    mono.advance(5.0)
    snap = gate.snapshot(SID)
    assert snap["state"] == "thinking"
    assert snap["cooldown_active"] is True
    assert snap["cooldown_remaining_s"] == COOLDOWN - 5.0
    assert (snap["interaction_timeout_s"], snap["cooldown_period_s"]) == (TIMEOUT, COOLDOWN)


def test_user_message_in_thinking_goes_reactive_and_blocks_offers(gate):
    gate.on_user_message(SID)
    assert _state(gate).current_state is AgentStateV2.REACTIVE
    decision = gate.try_offer(SID, "t1")
    assert (decision.allowed, decision.reason) == (False, "v2_state_reactive_assistance")


def test_user_message_while_proactive_stays_proactive_and_extends_the_timeout(gate, mono):
    gate.try_offer(SID, "t1")
    mono.advance(8.0)
    gate.on_user_message(SID)  # must not raise: the SDK has no PROACTIVE → REACTIVE edge
    assert _state(gate).current_state is AgentStateV2.PROACTIVE
    mono.advance(8.0)  # 16 s after the offer, 8 s after the message
    assert gate.check(SID).reason == "v2_state_proactive_assistance"
    mono.advance(2.5)
    assert gate.check(SID).reason == "v2_cooldown_active"


def test_cta_after_timeout_starts_guidance_and_keeps_offers_gated(gate, mono):
    gate.try_offer(SID, "bulk_edit_opportunity")
    mono.advance(TIMEOUT + 0.5)
    assert gate.check(SID).reason == "v2_cooldown_active"  # timed out, cooldown running
    gate.start_guidance(SID, "bulk_edit_opportunity", tour_id="bulk_edit_tour", flow_id="bulk-edit-projects")
    state = _state(gate)
    assert state.current_state is AgentStateV2.PROACTIVE
    assert state.visual_guidance_active is True
    assert state.active_tour_id == "bulk-edit-projects"  # the SDK keys tour timeouts by flow id
    assert state.metadata[ACTIVE_TOUR] == {
        "tour_id": "bulk_edit_tour",
        "flow_id": "bulk-edit-projects",
        "trigger_id": "bulk_edit_opportunity",
    }
    decision = gate.try_offer(SID, "bulk_edit_opportunity")
    assert (decision.allowed, decision.reason) == (False, "v2_state_proactive_assistance")


def test_record_step_resets_the_interaction_timer(gate, mono):
    gate.start_guidance(SID, "t1", tour_id="tour", flow_id="flow")
    mono.advance(8.0)
    assert gate.record_step(SID) == {"tour_id": "tour", "flow_id": "flow", "trigger_id": "t1"}
    mono.advance(8.0)
    assert gate.check(SID).reason == "v2_state_proactive_assistance"
    mono.advance(2.5)
    assert gate.check(SID).reason == "v2_cooldown_active"


def test_record_step_without_a_tour_returns_none(gate):
    assert gate.record_step(SID) is None
    assert _state(gate).current_state is AgentStateV2.THINKING


def test_record_step_after_a_mid_tour_timeout_resumes_guidance(gate, mono):
    gate.start_guidance(SID, "t1", tour_id="tour", flow_id="flow")
    mono.advance(TIMEOUT + 0.5)
    assert gate.check(SID).reason == "v2_cooldown_active"
    assert _state(gate).visual_guidance_active is False
    assert gate.record_step(SID) is not None
    state = _state(gate)
    assert state.current_state is AgentStateV2.PROACTIVE and state.visual_guidance_active


def test_end_guidance_turns_guidance_off(gate):
    gate.start_guidance(SID, "t1", tour_id="tour", flow_id="flow")
    assert gate.end_guidance(SID) == {"tour_id": "tour", "flow_id": "flow", "trigger_id": "t1"}
    state = _state(gate)
    assert state.visual_guidance_active is False and state.active_tour_id is None
    assert ACTIVE_TOUR not in state.metadata
    assert state.current_state is AgentStateV2.PROACTIVE  # the engagement itself times out normally
    assert gate.end_guidance(SID) is None


def test_end_guidance_after_timeout_just_clears_the_tour(gate, mono):
    gate.start_guidance(SID, "t1", tour_id="tour", flow_id="flow")
    mono.advance(TIMEOUT + 0.5)
    assert gate.end_guidance(SID)["tour_id"] == "tour"  # no set_visual_guidance in THINKING: no raise
    assert _state(gate).current_state is AgentStateV2.THINKING
    assert gate.record_step(SID) is None


def test_engage_after_timeout_reopens_proactive(gate, mono):
    gate.try_offer(SID, "t1")
    mono.advance(TIMEOUT + 0.5)
    gate.check(SID)
    gate.engage(SID, "t1")
    state = _state(gate)
    assert state.current_state is AgentStateV2.PROACTIVE and state.proactive.user_clicked_option


# -- engine: offers ---------------------------------------------------------------------------


def _saves(ph, *offsets, **kw):
    return [ph.save(T0 + o, **kw) for o in offsets]


async def test_three_saves_publish_exactly_one_offer_with_the_configured_body(engine, ph, config):
    sub = engine.hub.subscribe("user-1")
    events = [ph.pageview("/projects", T0), *_saves(ph, 10, 20, 30)]
    offers = engine.ingest(ph.batch(events, received_at=T0 + 31), now=T0 + 31)
    assert len(offers) == 1
    offer = await sub.next(timeout=0.1)
    assert offer is offers[0]
    assert offer.body == BULK_EDIT_BODY == config.trigger("bulk_edit_opportunity").body
    assert offer.tours == (BULK_EDIT_TOUR,)
    assert (offer.user_id, offer.session_id, offer.trigger_id) == ("user-1", SID, "bulk_edit_opportunity")
    assert offer.created_at == T0 + 31
    assert len(offer.offer_id) == 32
    assert offer.to_dict()["tours"] == [{"id": "bulk_edit_tour", "flow_id": "bulk-edit-projects", "label": "Show me bulk edit"}]
    assert await sub.next(timeout=0.01) is None


def test_offer_fires_the_moment_the_third_save_arrives(engine, ph):
    assert engine.ingest(ph.batch(_saves(ph, 1), received_at=T0 + 1), now=T0 + 1) == []
    assert engine.ingest(ph.batch(_saves(ph, 2), received_at=T0 + 2), now=T0 + 2) == []
    offers = engine.ingest(ph.batch(_saves(ph, 3), received_at=T0 + 3), now=T0 + 3)
    assert [o.trigger_id for o in offers] == ["bulk_edit_opportunity"]


def test_a_third_save_that_arrives_after_the_user_left_the_page_offers_nothing(engine, ph):
    """The save's request was held on the way; the dashboard pageview, done later, got there first."""
    for n in (1, 2):
        engine.ingest(ph.batch(_saves(ph, n), sent_at=T0 + n, received_at=T0 + n + 0.02, skew=engine.stores.clock_skew), now=T0 + n)
    dashboard = [ph.pageview("/dashboard", T0 + 4)]
    engine.ingest(ph.batch(dashboard, sent_at=T0 + 4, received_at=T0 + 4.02, skew=engine.stores.clock_skew), now=T0 + 4.02)
    late = ph.batch(_saves(ph, 3), sent_at=T0 + 3, received_at=T0 + 5, skew=engine.stores.clock_skew)
    assert engine.ingest(late, now=T0 + 5) == []
    verdict = engine.debug("user-1", now=T0 + 5)["triggers"][0]
    assert verdict["reason"] == "latest action is on /dashboard, not a /projects page"


async def test_fourth_save_right_after_does_not_publish_a_second_offer(engine, ph):
    sub = engine.hub.subscribe("user-1")
    assert len(engine.ingest(ph.batch(_saves(ph, 1, 2, 3), received_at=T0 + 3), now=T0 + 3)) == 1
    assert engine.ingest(ph.batch(_saves(ph, 4), received_at=T0 + 4), now=T0 + 4) == []
    assert engine.tick(now=T0 + 5).offers == 0
    assert isinstance(await sub.next(timeout=0.05), Offer)
    assert await sub.next(timeout=0.01) is None


# -- an offer consumes its evidence -----------------------------------------------------------


def _engine(config, incremental):
    return ProactiveEngine(config, clock=lambda: T0, incremental=incremental)


def _shown_offer(config, ph, incremental):
    """An engine whose user has a tab open and was just shown the offer for three saves."""
    engine = _engine(config, incremental)
    engine.subscribe("user-1", now=T0)
    assert len(engine.ingest(ph.batch(_saves(ph, 1, 2, 3), received_at=T0 + 3), now=T0 + 3)) == 1
    return engine


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full-rescan"])
async def test_the_same_saves_never_bring_the_offer_back_after_the_cooldown(config, ph, mono, incremental):
    """The issue's repeat: three saves, a toast, and with no new events the same toast again
    once the session timed out and the cooldown ended. Not any more."""
    engine = _shown_offer(config, ph, incremental)
    for step in range(1, 9):  # ticks over 80 s: past the 10 s timeout and the 20 s cooldown, inside the 120 s window
        mono.advance(10)
        assert engine.tick(now=T0 + 3 + 10 * step).offers == 0
    assert engine.debug("user-1", now=T0 + 83)["triggers"][0] == {
        "trigger_id": "bulk_edit_opportunity", "fired": False,
        "reason": "0 of 3 'save changes' actions on /projects within the last 120 s since its last offer",
    }


def _past_timeout_and_cooldown(engine, mono):
    mono.advance(TIMEOUT + 1)
    assert engine.tick(now=T0 + 15).offers == 0  # timed out: the cooldown starts
    mono.advance(COOLDOWN + 1)
    assert engine.tick(now=T0 + 36).offers == 0  # the gate is open again, the old saves are spent


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full-rescan"])
def test_only_new_saves_after_the_offer_count_towards_the_next(config, ph, mono, incremental):
    engine = _shown_offer(config, ph, incremental)
    _past_timeout_and_cooldown(engine, mono)
    # Two new saves and the three old ones all sit in the 120 s window: two are not three.
    assert engine.ingest(ph.batch(_saves(ph, 40, 41), received_at=T0 + 41), now=T0 + 41) == []
    offers = engine.ingest(ph.batch(_saves(ph, 42), received_at=T0 + 42), now=T0 + 42)
    assert [o.trigger_id for o in offers] == ["bulk_edit_opportunity"]


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full-rescan"])
def test_a_late_save_stamped_before_the_offer_was_part_of_its_evidence(config, ph, mono, incremental):
    """Consumed means stamped at or before the offer, whenever it arrives (batches come late)."""
    engine = _shown_offer(config, ph, incremental)
    _past_timeout_and_cooldown(engine, mono)
    late = _saves(ph, 2.5) + _saves(ph, 40, 41)
    assert engine.ingest(ph.batch(late, received_at=T0 + 41), now=T0 + 41) == []


def test_an_offer_nobody_saw_consumes_nothing(config, ph, mono):
    engine = _engine(config, True)
    assert len(engine.ingest(ph.batch(_saves(ph, 1, 2, 3), received_at=T0 + 3), now=T0 + 3)) == 1  # no tab: parked
    assert engine.gate.consumed(SID) == {}
    engine.subscribe("user-1", now=T0 + 5)  # the tab opens: it is shown now, and consumes
    assert engine.gate.consumed(SID) == {"bulk_edit_opportunity": T0 + 3}


def test_tour_is_offered_only_when_the_latest_action_is_on_its_page(config, ph, mono):
    broad = replace(config.trigger("bulk_edit_opportunity"), page="/")  # saves count on any page
    variant = replace(config, triggers=(broad,))
    on_settings = ProactiveEngine(variant).ingest(
        ph.batch(_saves(ph, 1, 2, 3, path="/settings"), received_at=T0 + 4), now=T0 + 4
    )
    on_projects = ProactiveEngine(variant).ingest(
        ph.batch(_saves(ph, 1, 2, 3, path="/projects/P-1042"), received_at=T0 + 4), now=T0 + 4
    )
    assert [o.tours for o in on_settings] == [()]
    assert [o.tours for o in on_projects] == [(BULK_EDIT_TOUR,)]


async def test_chat_message_before_the_third_save_prevents_the_offer(engine, ph):
    sub = engine.hub.subscribe("user-1")
    engine.ingest(ph.batch(_saves(ph, 1, 2), received_at=T0 + 2), now=T0 + 2)
    assert engine.on_chat_message("user-1") is True
    assert engine.ingest(ph.batch(_saves(ph, 3), received_at=T0 + 3), now=T0 + 3) == []
    assert await sub.next(timeout=0.01) is None
    debug = engine.debug("user-1", now=T0 + 3)
    assert debug["state"]["state"] == "reactive_assistance"
    assert debug["gate"] == {"open": False, "reason": "v2_state_reactive_assistance"}
    assert debug["triggers"][0]["fired"] is True  # the pattern is there; the gate held it back


def test_chat_message_from_an_unknown_user_changes_nothing(engine):
    assert engine.on_chat_message("ghost") is False
    assert engine.engage_chat("ghost", None) is False


def test_offer_again_only_after_timeout_and_cooldown(engine, ph, mono):
    engine.subscribe("user-1", now=T0)  # a toast stream is open: offers are delivered at once
    assert len(engine.ingest(ph.batch(_saves(ph, 1, 2, 3), received_at=T0 + 3), now=T0 + 3)) == 1
    mono.advance(TIMEOUT + 0.5)
    assert engine.tick(now=T0 + 14) == TickReport(sessions=1, offers=0, failures=0, evicted=0)
    assert engine.ingest(ph.batch(_saves(ph, 15, 16, 17), received_at=T0 + 17), now=T0 + 17) == []
    assert engine.debug("user-1", now=T0 + 17)["gate"] == {"open": False, "reason": "v2_cooldown_active"}
    mono.advance(COOLDOWN + 0.5)
    assert engine.tick(now=T0 + 38).offers == 1  # saves still within the 120 s window


def _fail_session(engine, monkeypatch, failing_session_id):
    """Reading one session's activity raises (whichever way the engine reads it: the full
    context or the index's latest action); every other session works."""

    def flaky(method_name):
        original = getattr(engine.activity, method_name)

        def read(*args, **kwargs):
            if failing_session_id in args or kwargs.get("session_id") == failing_session_id:
                raise RuntimeError("store unavailable")
            return original(*args, **kwargs)

        monkeypatch.setattr(engine.activity, method_name, read)

    flaky("load_payloads")
    flaky("latest_action")


def test_ingest_isolates_a_failing_session(engine, ph, monkeypatch, caplog):
    _fail_session(engine, monkeypatch, "s-u2")
    events = [e for u in ("u1", "u2", "u3") for e in _saves(ph, 1, 2, 3, user=u, session=f"s-{u}")]
    with caplog.at_level(logging.ERROR, logger="addons.offers.engine"):
        offers = engine.ingest(ph.batch(events, received_at=T0 + 4), now=T0 + 4)
    assert sorted(o.user_id for o in offers) == ["u1", "u3"]
    assert "s-u2" in caplog.text


async def test_tick_isolates_a_failing_session(engine, ph, monkeypatch):
    subs = {u: engine.hub.subscribe(u) for u in ("u1", "u2", "u3")}
    for u in subs:  # stored without evaluation: the offers must come from the tick
        engine.activity.add(ph.batch(_saves(ph, 1, 2, 3, user=u, session=f"s-{u}"), received_at=T0 + 3).actions, now=T0 + 3)
    _fail_session(engine, monkeypatch, "s-u2")
    report = engine.tick(now=T0 + 4)
    assert report == TickReport(sessions=3, offers=2, failures=1, evicted=0)
    assert isinstance(await subs["u1"].next(timeout=0.05), Offer)
    assert isinstance(await subs["u3"].next(timeout=0.05), Offer)
    assert await subs["u2"].next(timeout=0.01) is None


def test_tick_evicts_idle_sessions_and_forgets_their_state(engine, ph, config):
    engine.ingest(ph.batch(_saves(ph, 1, 2, 3), received_at=T0 + 3), now=T0 + 3)
    assert engine.gate.store.get(SID) is not None
    report = engine.tick(now=T0 + 3 + config.activity.idle_session_s + 1)
    assert report == TickReport(sessions=0, offers=0, failures=0, evicted=1)
    assert engine.gate.store.get(SID) is None
    with pytest.raises(UnknownUser):
        engine.debug("user-1")


# -- engine: tours and CTAs ------------------------------------------------------------------


def _offered(engine, ph):
    """The offer fires and is delivered to the user's open toast stream."""
    engine.subscribe("user-1", now=T0)
    offers = engine.ingest(ph.batch(_saves(ph, 1, 2, 3), received_at=T0 + 3), now=T0 + 3)
    assert len(offers) == 1
    return offers[0]


def test_start_step_and_end_tour(engine, ph, mono):
    _offered(engine, ph)
    start = engine.start_tour("user-1", "bulk_edit_tour")
    assert start == TourStart(tour_id="bulk_edit_tour", flow_id="bulk-edit-projects", session_id=SID)
    state = engine.debug("user-1", now=T0 + 4)["state"]
    assert state["visual_guidance_active"] is True
    assert state["active_tour"] == {
        "tour_id": "bulk_edit_tour",
        "flow_id": "bulk-edit-projects",
        "trigger_id": "bulk_edit_opportunity",
    }
    tour = {"tour_id": "bulk_edit_tour", "flow_id": "bulk-edit-projects", "trigger_id": "bulk_edit_opportunity"}
    assert engine.record_tour_step("user-1") == tour
    assert engine.end_tour("user-1") == tour
    state = engine.debug("user-1", now=T0 + 5)["state"]
    assert state["visual_guidance_active"] is False and state["active_tour"] is None
    with pytest.raises(NoActiveTour):
        engine.end_tour("user-1")
    with pytest.raises(NoActiveTour):
        engine.record_tour_step("user-1")


def test_running_tour_uses_the_tours_own_timeout(engine, ph, mono):
    _offered(engine, ph)
    engine.start_tour("user-1", "bulk_edit_tour")  # bulk_edit_tour: 60 s, session default: 10 s
    mono.advance(30.0)
    engine.tick(now=T0 + 33)
    assert engine.debug("user-1", now=T0 + 33)["state"]["state"] == "proactive_assistance"
    engine.record_tour_step("user-1")
    mono.advance(59.0)
    assert engine.debug("user-1", now=T0 + 92)["state"]["state"] == "proactive_assistance"
    mono.advance(2.0)
    state = engine.debug("user-1", now=T0 + 94)["state"]
    assert (state["state"], state["cooldown_active"], state["cooldown_remaining_s"]) == ("thinking", True, 20.0)


def test_start_tour_without_an_offer_uses_the_trigger_that_lists_the_tour(engine, ph):
    engine.ingest(ph.batch([ph.pageview("/projects", T0)], received_at=T0), now=T0)
    engine.start_tour("user-1", "bulk_edit_tour")
    assert engine.debug("user-1", now=T0)["state"]["active_tour"]["trigger_id"] == "bulk_edit_opportunity"
    assert engine.debug("user-1", now=T0)["gate"]["reason"] == "v2_state_proactive_assistance"


def test_show_me_after_the_offer_timed_out_still_starts_the_tour(engine, ph, mono):
    _offered(engine, ph)
    mono.advance(TIMEOUT + 0.5)
    engine.tick(now=T0 + 14)
    assert engine.debug("user-1", now=T0 + 14)["gate"]["reason"] == "v2_cooldown_active"
    engine.start_tour("user-1", "bulk_edit_tour")
    debug = engine.debug("user-1", now=T0 + 14)
    assert debug["state"]["state"] == "proactive_assistance"
    assert debug["state"]["visual_guidance_active"] is True
    assert engine.ingest(ph.batch(_saves(ph, 15, 16, 17), received_at=T0 + 17), now=T0 + 17) == []


def test_open_chat_after_the_offer_timed_out_reopens_proactive(engine, ph, mono):
    _offered(engine, ph)
    mono.advance(TIMEOUT + 0.5)
    engine.tick(now=T0 + 14)
    assert engine.engage_chat("user-1", None) is True
    assert engine.debug("user-1", now=T0 + 14)["state"]["state"] == "proactive_assistance"


def test_tour_errors(engine, ph):
    with pytest.raises(UnknownTour, match="unknown tour 'nope'"):
        engine.start_tour("ghost", "nope")  # the tour is checked first
    with pytest.raises(UnknownUser, match="ghost"):
        engine.start_tour("ghost", "bulk_edit_tour")
    with pytest.raises(UnknownUser):
        engine.record_tour_step("ghost")
    with pytest.raises(UnknownUser):
        engine.end_tour("ghost")
    engine.ingest(ph.batch([ph.pageview("/projects", T0)], received_at=T0), now=T0)
    with pytest.raises(NoActiveTour):
        engine.record_tour_step("user-1")
    with pytest.raises(NoActiveTour):
        engine.end_tour("user-1")


def test_how_to_returns_the_configured_steps(engine, config):
    steps = engine.how_to("bulk_edit_opportunity")
    assert steps == config.trigger("bulk_edit_opportunity").how_to and len(steps) == 5
    assert engine.how_to("nope") == ()


# -- engine: debug ----------------------------------------------------------------------------


def test_debug_shows_state_recent_actions_and_each_verdict(engine, ph):
    engine.hub.subscribe("user-1")
    events = [ph.pageview("/projects", T0), *_saves(ph, 1, 2)]
    engine.ingest(ph.batch(events, received_at=T0 + 2), now=T0 + 2)
    debug = engine.debug("user-1", now=T0 + 2)
    assert (debug["user_id"], debug["session_id"], debug["subscribers"]) == ("user-1", SID, 1)
    assert debug["state"]["state"] == "thinking"
    assert debug["gate"] == {"open": True, "reason": "ok"}
    assert debug["last_offer"] is None
    assert [(r["type"], r["label"], r["url"]) for r in debug["recent_actions"]] == [
        ("pageview", "Page Load: /projects", "https://app.example.com/projects"),
        ("click", "Save changes", "https://app.example.com/projects"),
        ("click", "Save changes", "https://app.example.com/projects"),
    ]
    assert debug["recent_actions"][0]["at"] == "2026-05-19T11:06:02.919000+00:00"
    assert "User clicked 'Save changes'" in debug["recent_actions"][1]["text"]
    assert debug["triggers"] == [
        {
            "trigger_id": "bulk_edit_opportunity",
            "fired": False,
            "reason": "2 of 3 'save changes' actions on /projects within the last 120 s",
        }
    ]

    offer = engine.ingest(ph.batch(_saves(ph, 3), received_at=T0 + 3), now=T0 + 3)[0]
    debug = engine.debug("user-1", now=T0 + 3)
    assert debug["state"]["state"] == "proactive_assistance"
    assert debug["gate"] == {"open": False, "reason": "v2_state_proactive_assistance"}
    assert debug["last_offer"] == {"offer_id": offer.offer_id, "trigger_id": "bulk_edit_opportunity", "at": T0 + 3}
    # The offer consumed its evidence: the same three saves no longer make the trigger fire.
    assert debug["triggers"] == [{"trigger_id": "bulk_edit_opportunity", "fired": False,
                                  "reason": "0 of 3 'save changes' actions on /projects within the last 120 s since its last offer"}]


def test_debug_of_an_unknown_user_raises(engine):
    with pytest.raises(UnknownUser):
        engine.debug("ghost", now=T0)


# -- ProactiveDriver ----------------------------------------------------------------------------


async def _until(condition, timeout: float = 5.0) -> None:
    """Waits for the driver's loop, however busy the machine is, instead of a fixed sleep."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_driver_ticks_until_cancelled(engine, ph, monkeypatch):
    reports = []
    original = engine.tick

    def recording_tick(**kw):
        reports.append(original(now=T0 + 3))  # the stored saves are "just now"
        return reports[-1]

    monkeypatch.setattr(engine, "tick", recording_tick)
    engine.activity.add(ph.batch(_saves(ph, 1, 2, 3), received_at=T0 + 3).actions, now=T0 + 3)
    driver = ProactiveDriver(LocalOffers(engine), tick_seconds=0.01)
    task = asyncio.create_task(driver.run())
    await _until(lambda: driver.ticks >= 1)
    assert driver.running and not task.done()
    assert driver.ticks >= 1 and driver.last_tick_at is not None
    assert reports[0].offers == 1  # the first tick evaluated the stored session
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert driver.running is False


async def test_driver_logs_and_survives_a_failing_tick(engine, monkeypatch, caplog):
    calls = []

    def broken_tick(**kw):
        calls.append(kw)
        raise RuntimeError("tick exploded")

    monkeypatch.setattr(engine, "tick", broken_tick)
    driver = ProactiveDriver(LocalOffers(engine), tick_seconds=0.01)
    with caplog.at_level(logging.ERROR, logger="addons.rasa.driver"):
        task = asyncio.create_task(driver.run())
        await _until(lambda: driver.ticks >= 2)
        assert not task.done()  # still looping after failures
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert driver.ticks >= 2 and driver.ticks == len(calls)
    assert "proactive driver tick failed" in caplog.text
    assert "tick exploded" in caplog.text


async def test_tick_once_counts_failed_ticks_too(engine, monkeypatch):
    driver = ProactiveDriver(LocalOffers(engine), tick_seconds=5)
    await driver.tick_once()
    monkeypatch.setattr(engine, "tick", lambda **kw: 1 / 0)
    await driver.tick_once()
    assert driver.ticks == 2 and driver.last_tick_at is not None


# -- DeliveryHub --------------------------------------------------------------------


def _offer(n: int, user: str = "user-1") -> Offer:
    return Offer(f"offer-{n}", user, SID, "bulk_edit_opportunity", f"body {n}", (BULK_EDIT_TOUR,), T0 + n)


async def test_publish_reaches_every_subscriber_of_the_user():
    hub = DeliveryHub(InMemoryOfferStore())
    a, b = hub.subscribe("user-1"), hub.subscribe("user-1")
    other = hub.subscribe("user-2")
    assert hub.publish(_offer(1)) == 2
    assert (await a.next(0.05)).offer_id == "offer-1"
    assert (await b.next(0.05)).offer_id == "offer-1"
    assert await other.next(0.01) is None
    assert (hub.subscriber_count("user-1"), hub.subscriber_count()) == (2, 3)


async def test_unsubscribe_leaves_no_subscribers_and_removes_the_user():
    hub = DeliveryHub(InMemoryOfferStore())
    a, b = hub.subscribe("user-1"), hub.subscribe("user-1")
    hub.unsubscribe(a)
    assert hub.subscriber_count("user-1") == 1
    hub.unsubscribe(b)
    hub.unsubscribe(b)  # twice is harmless
    assert hub.subscriber_count("user-1") == 0 and hub.subscriber_count() == 0
    assert "user-1" not in hub._subscribers  # no empty set left behind per departed user
    assert hub.publish(_offer(1)) == 0


async def test_full_queue_drops_the_oldest_offer():
    hub = DeliveryHub(InMemoryOfferStore(), queue_size=2)
    sub = hub.subscribe("user-1")
    for n in (1, 2, 3):
        assert hub.publish(_offer(n)) == 1
    assert [(await sub.next(0.05)).offer_id for _ in range(2)] == ["offer-2", "offer-3"]
    assert await sub.next(0.01) is None


async def test_close_all_delivers_closed_to_every_subscriber():
    hub = DeliveryHub(InMemoryOfferStore())
    subs = [hub.subscribe("user-1"), hub.subscribe("user-2")]
    hub.close_all()
    assert [await s.next(0.05) for s in subs] == [CLOSED, CLOSED]

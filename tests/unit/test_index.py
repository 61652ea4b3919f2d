"""The incremental index and the tick schedule give the same verdicts and offers as the
full rescan (every evaluation rebuilding the context from all stored actions, every tick
visiting every session)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import List, Tuple

import pytest
from autoplay_sdk.proactive.triggers.context_source import build_proactive_context_from_payloads
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addons.config import (
    AbsenceTriggerConfig, ActionMatch, ActivityLimits, DwellTriggerConfig, RepeatedActionTriggerConfig,
    SequenceTriggerConfig,
)
from addons.offers.delivery import DeliveryHub
from addons.offers.evaluation import FullRescan, Incremental
from addons.offers.engine import ProactiveEngine
from addons.offers.index import TriggerIndex
from addons.offers.offer import Offer
from addons.offers.triggers import (
    CONSUMED, EVAL_NOW, AbsenceTrigger, DwellTrigger, IndexedTrigger, RepeatedActionTrigger, SequenceTrigger,
)
from addons.stores.memory import InMemoryActivityStore, InMemoryOfferStore
from conftest import T0, to_batch
from posthog_events import posthog_event

LABELS = ["Save changes", "save CHANGES now", "Edit", "Bulk edit", "Apply to 3", "Priority", None]
PATHS = ["/projects", "/projects/P-1042", "/dashboard", "/settings?from=/projects"]
# The engine scenarios lean towards the story (saves on /projects) so that offers fire often,
# from ingest and from ticks (a cooldown ending, a "Bulk edit" leaving the window).
STORY_LABELS = ["Save changes"] * 6 + LABELS
STORY_PATHS = ["/projects"] * 4 + PATHS
TRIGGER = RepeatedActionTriggerConfig(
    id="bulk_edit_opportunity", page="/projects", action_hints=("save changes",),
    discovered_hints=("bulk edit", "apply to"), min_count=3, window_s=120.0, body="Bulk edit?",
)
# One of each declarative kind, over the same labels and pages.
SEQUENCE = SequenceTriggerConfig(
    id="edit_then_save", first=ActionMatch(label=("edit",)), then=ActionMatch(label=("save changes",), page="/projects"),
    within_s=60.0, not_between=ActionMatch(label=("bulk edit",)), body="Edit then save?",
)
DWELL = DwellTriggerConfig(id="lingering", page="/projects/:id", min_s=30.0, max_actions=3, body="Looking for something?")
ABSENCE = AbsenceTriggerConfig(
    id="edit_unsaved", did=ActionMatch(label=("edit",), kind=("click",)), then_not=ActionMatch(label=("save changes",)),
    within_s=60.0, body="Forgot to save?",
)
KINDS = {
    "repeated_action": lambda: RepeatedActionTrigger(TRIGGER), "sequence": lambda: SequenceTrigger(SEQUENCE),
    "dwell": lambda: DwellTrigger(DWELL), "absence": lambda: AbsenceTrigger(ABSENCE),
}


def _event(rng_or_draw, ts: float, user: str = "user-1", session: str = "s-1") -> dict:
    label, path = rng_or_draw
    if label is None:
        return posthog_event("$pageview", ts=ts, path=path, user=user, session=session)
    return posthog_event("$autocapture", ts=ts, path=path, text=label, user=user, session=session)


def _full_verdict(store: InMemoryActivityStore, trigger: IndexedTrigger, session_id: str, now: float,
                  since: float = float("-inf")):
    payloads = store.load_payloads(product_id="p", session_id=session_id)
    ctx = build_proactive_context_from_payloads(
        payloads, lookback_seconds=None, max_actions=None, now=now, session_id=session_id, product_id="p",
        action_count=sum(p.count for p in payloads), context_extra={EVAL_NOW: now, CONSUMED: {trigger.trigger_id: since}},
    )
    return trigger.explain(ctx).result


actions = st.lists(
    st.tuples(st.floats(-300, 300), st.sampled_from(LABELS), st.sampled_from(PATHS)), min_size=0, max_size=25
)


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(actions, min_size=1, max_size=4), now_offset=st.floats(-30, 400), cap=st.integers(2, 30),
       consumed=st.none() | st.floats(-300, 300))
def test_indexed_verdict_equals_the_full_rescan(kind, batches, now_offset, cap, consumed):
    """Out-of-order batches, duplicate timestamps, trimming by the per-session cap, evidence
    consumed by an earlier offer: for every kind, the index's binary searches answer exactly
    what the rescan of every action answers."""
    trigger = KINDS[kind]()
    store = InMemoryActivityStore(ActivityLimits(max_actions_per_session=cap), product_id="p")
    index = TriggerIndex([trigger])
    store.add_observer(index)
    for batch in batches:
        events = [_event((label, path), T0 + offset) for offset, label, path in batch]
        store.add(to_batch(events, received_at=T0 + 300).actions, now=T0 + 300)
    now = T0 + now_offset
    since = float("-inf") if consumed is None else T0 + consumed
    indexed = trigger.evaluate_marks(index.marks("s-1", 0), store.latest_action("s-1"), now, since)
    assert indexed == _full_verdict(store, trigger, "s-1", now, since)


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=actions, now_offset=st.floats(-30, 300), later=st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_a_no_stays_no_until_next_change(kind, batch, now_offset, later):
    """Between an evaluation that did not fire and the trigger's ``next_change``, no time
    makes the rescan fire: the tick may skip the session until then."""
    trigger = KINDS[kind]()
    store = InMemoryActivityStore(ActivityLimits(), product_id="p")
    index = TriggerIndex([trigger])
    store.add_observer(index)
    store.add(to_batch([_event((label, path), T0 + o) for o, label, path in batch], received_at=T0).actions, now=T0)
    now = T0 + now_offset
    if _full_verdict(store, trigger, "s-1", now) is not None:
        return
    wake = trigger.next_change(index.marks("s-1", 0), now)
    horizon = min(wake, now + 600)
    for fraction in later:
        t = now + (horizon - now) * fraction
        if t < wake:
            assert _full_verdict(store, trigger, "s-1", t) is None, (now, t, wake)


def test_index_forgets_trimmed_and_evicted_actions():
    trigger = RepeatedActionTrigger(TRIGGER)
    store = InMemoryActivityStore(ActivityLimits(max_actions_per_session=2, idle_session_s=100), product_id="p")
    index = TriggerIndex([trigger])
    store.add_observer(index)
    store.add(to_batch([_event(("Save changes", "/projects"), T0 + i) for i in range(4)], received_at=T0).actions, now=T0)
    assert index.marks("s-1", 0)[0] == [T0 + 2, T0 + 3]  # the repeats
    store.evict(now=T0 + 101)
    assert index.session_count() == 0


class RecordingHub(DeliveryHub):
    def __init__(self) -> None:
        super().__init__(InMemoryOfferStore())
        self.published: List[Offer] = []

    def publish(self, offer: Offer, *, now: float = 0.0) -> int:
        self.published.append(offer)
        return super().publish(offer, now=now)


def _offer_key(offer: Offer) -> Tuple:
    return (offer.user_id, offer.session_id, offer.trigger_id, offer.body, offer.tours, offer.created_at)


delivered: List[int] = []  # offers published per seed, so the comparison is known not to be of empty lists


@pytest.mark.parametrize("seed", range(60))
def test_incremental_engine_makes_the_same_offers_as_the_full_rescan(config, mono, seed):
    """Random users, sessions, out-of-order batches, chat messages, tours, ticks, trimming
    and eviction, against both engines on the same clocks: the same offers, step by step."""
    rng = random.Random(seed)
    small = replace(config, activity=ActivityLimits(retention_s=600, max_actions_per_session=12,
                                                    idle_session_s=300, max_sessions=8))
    mixed = replace(config, triggers=(*config.triggers, SEQUENCE, DWELL, ABSENCE))  # every kind, first match wins
    chosen = rng.choice([config, small, mixed, replace(mixed, activity=small.activity)])
    hubs = (RecordingHub(), RecordingHub())
    fast = ProactiveEngine(chosen, hub=hubs[0], clock=lambda: T0)
    reference = ProactiveEngine(chosen, hub=hubs[1], clock=lambda: T0, incremental=False)
    assert isinstance(fast.strategy, Incremental) and isinstance(reference.strategy, FullRescan)
    now = T0
    users = [f"u{i}" for i in range(rng.randint(1, 6))]
    for user in users[::2]:  # some users have a tab open (offers delivered), the others not (offers parked)
        for engine in (fast, reference):
            engine.subscribe(user, now=now)
    for step in range(120):
        now += rng.choice([0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 130.0])
        mono.advance(rng.choice([0.0, 1.0, 3.0, 5.0, 11.0, 21.0]))
        kind = rng.random()
        if kind < 0.6:
            user = rng.choice(users)
            session = f"{user}-s{rng.randint(0, 2)}"
            events = [
                _event((rng.choice(STORY_LABELS), rng.choice(STORY_PATHS)), now + rng.uniform(-130, 4), user=user,
                       session=session)
                for _ in range(rng.randint(1, 4))
            ]
            if rng.random() < 0.1:  # identify: another user takes the session over
                for e in events:
                    e["distinct_id"] = rng.choice(users)
            for engine in (fast, reference):
                engine.ingest(to_batch(events, received_at=now), now=now)
        elif kind < 0.85:
            reports = [engine.tick(now=now) for engine in (fast, reference)]
            assert reports[0].offers == reports[1].offers and reports[0].evicted == reports[1].evicted
        elif kind < 0.93:
            user = rng.choice(users)
            assert fast.on_chat_message(user) == reference.on_chat_message(user)
        else:
            user = rng.choice(users)
            action = rng.choice(["start", "end"])
            for engine in (fast, reference):
                try:
                    engine.start_tour(user, "bulk_edit_tour") if action == "start" else engine.end_tour(user)
                except LookupError:
                    pass
        # The same offers; within one tick the two visit users in another order, which changes nothing.
        assert sorted(map(_offer_key, hubs[0].published)) == sorted(map(_offer_key, hubs[1].published)), f"step {step}"
    assert fast.activity.session_count() == reference.activity.session_count()
    delivered.append(len(hubs[0].published))


def test_the_equivalence_runs_published_offers():
    """Runs after the 60 seeds above: together they compared real deliveries, not nothing."""
    assert len(delivered) == 60 and sum(delivered) > 0, delivered


def test_tick_visits_only_sessions_that_could_change(config, mono):
    engine = ProactiveEngine(config, clock=lambda: T0)
    for i in range(50):
        events = [_event(("Edit", "/projects"), T0 - 5, user=f"u{i}", session=f"s{i}")]
        engine.ingest(to_batch(events, received_at=T0), now=T0)
    assert engine.tick(now=T0 + 5).sessions == 0  # none could fire without a new event
    engine.on_chat_message("u7")  # REACTIVE: nothing can change before the interaction timeout
    assert engine.tick(now=T0 + 10).sessions == 0
    mono.advance(config.session.interaction_timeout_s + 0.5)
    assert engine.tick(now=T0 + 15).sessions == 1  # timed out into a cooldown: watched until it ends
    assert engine.tick(now=T0 + 20).sessions == 0
    mono.advance(config.session.cooldown_period_s)
    assert engine.tick(now=T0 + 40).sessions == 1  # the gate is open again, and stays unvisited
    assert engine.tick(now=T0 + 45).sessions == 0


def test_a_session_whose_offer_waits_for_a_tab_is_not_visited_by_ticks_while_events_arrive(config, mono):
    hub = RecordingHub()
    engine = ProactiveEngine(config, hub=hub, clock=lambda: T0)
    saves = [_event(("Save changes", "/projects"), T0 - 3 + i) for i in range(3)]
    assert len(engine.ingest(to_batch(saves, received_at=T0), now=T0)) == 1  # parked: no tab is open
    for second in range(1, 6):  # more events on the session: each is evaluated at once, not by a tick
        more = [_event(("Edit", "/projects"), T0 + second)]
        assert engine.ingest(to_batch(more, received_at=T0 + second), now=T0 + second) == []
    assert engine.tick(now=T0 + 10).sessions == 0
    engine.subscribe("user-1", now=T0 + 12)  # the tab opens: the offer is taken, the gate watched
    assert len(hub.published) == 1
    mono.advance(config.session.interaction_timeout_s + 0.5)
    assert engine.tick(now=T0 + 25).sessions == 1


def test_a_session_whose_waiting_offer_expired_is_evaluated_again_by_its_next_event(config, mono):
    hub = RecordingHub()
    engine = ProactiveEngine(config, hub=hub, clock=lambda: T0)
    saves = [_event(("Save changes", "/projects"), T0 - 3 + i) for i in range(3)]
    engine.ingest(to_batch(saves, received_at=T0), now=T0)
    expired_at = T0 + config.delivery.pending_ttl_s + 1
    engine.tick(now=expired_at)  # the offer expires unseen
    assert engine.tick(now=expired_at + 5).sessions == 0  # nothing to look at until new activity
    engine.subscribe("user-1", now=expired_at + 5)
    later = [_event(("Save changes", "/projects"), expired_at + 5 + i) for i in range(3)]
    assert len(engine.ingest(to_batch(later, received_at=expired_at + 8), now=expired_at + 8)) == 1
    assert len(hub.published) == 1


def test_a_bulk_edit_leaving_the_window_wakes_the_session(config, mono):
    engine = ProactiveEngine(config, clock=lambda: T0)
    events = [_event(("Bulk edit", "/projects"), T0 - 100)] + [_event(("Save changes", "/projects"), T0 - i) for i in range(3)]
    assert engine.ingest(to_batch(events, received_at=T0), now=T0) == []
    assert engine.tick(now=T0 + 15).sessions == 0
    report = engine.tick(now=T0 + 25)  # 125 s after the bulk edit: out of the 120 s window
    assert (report.sessions, report.offers) == (1, 1)


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full-rescan"])
def test_a_pending_offer_refused_by_a_cap_is_looked_at_again_when_the_cap_lifts(config, mono, incremental):
    """Two sessions' offers wait for a tab; when it opens, the second is refused by the 10-minute
    gap. The session must come back once the gap has passed, in both strategies alike."""
    polite = replace(config, caps=type(config.caps)(), triggers=(ABSENCE,))
    hub = RecordingHub()
    engine = ProactiveEngine(polite, hub=hub, clock=lambda: T0, incremental=incremental)

    def edit(session: str, at: float) -> None:
        event = _event(("Edit", "/projects"), at, user="u1", session=session)
        engine.ingest(to_batch([event], received_at=at), now=at)

    edit("s1", T0)
    engine.tick(now=T0 + 61)  # s1's edit went unsaved: an offer, parked (no tab yet)
    edit("s2", T0 + 70)
    engine.tick(now=T0 + 131)  # and s2's
    engine.subscribe("u1", now=T0 + 140)  # the tab opens: s1's is shown, s2's refused by the gap
    assert [o.session_id for o in hub.published] == ["s1"]
    for second in range(150, 900, 10):
        mono.advance(10)
        engine.tick(now=T0 + second)
    assert [o.session_id for o in hub.published] == ["s1", "s2"]

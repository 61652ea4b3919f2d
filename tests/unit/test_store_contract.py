"""What any storage backend must do: one suite, run over every implementation of each
protocol in ``addons/stores/protocols.py``.

A new backend adds its factory to ``BACKENDS`` (and, if it needs a server, a fixture that
starts one); it is done when this suite passes for it. A backend shared by replicas runs the
engine on these in-memory stores one user at a time (``store: redis``); what it adds is held
to ``tests/integration/test_offer_service_contract.py``, which both backends pass.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Dict, List, Optional, Tuple

import pytest
from autoplay_sdk.agent_state.v2 import AgentStateV2
from autoplay_sdk.core.models import SlimAction

from addons.config import ProactiveConfig
from addons.insights.records import OfferRecord
from addons.offers.ingest import TrackedAction
from addons.offers.offer import CURSOR_MARGIN_S, Offer, stream_cursor
from addons.stores.memory import memory_stores
from addons.stores.protocols import NOW, Stores

T0 = 1779188762.919
PRODUCT = "contract"

BACKENDS: Dict[str, Callable[[ProactiveConfig], Stores]] = {
    "memory": memory_stores,
    # What a unit of work's bundle runs on (store: redis): session states with revisions.
    "memory-revised": lambda config: memory_stores(config, revised=True),
}


@pytest.fixture(params=sorted(BACKENDS))
def make_stores(request: pytest.FixtureRequest, config: ProactiveConfig) -> Callable[..., Stores]:
    factory = BACKENDS[request.param]

    def make(**activity: float) -> Stores:
        return factory(replace(config, activity=replace(config.activity, **activity)))

    return make


@pytest.fixture
def stores(make_stores: Callable[..., Stores]) -> Stores:
    return make_stores()


def _tracked(user: str, session: str, ts: float, title: str = "Save changes", event_id: Optional[str] = None) -> TrackedAction:
    action = SlimAction(title=title, description=f"User clicked '{title}'", canonical_url="https://app/projects",
                        type="click", timestamp_start=ts, timestamp_end=ts, raw_url="https://app/projects",
                        session_id=session, user_id=user)
    return TrackedAction(user_id=user, session_id=session, action=action, event_id=event_id)


def _offer(n: int, user: str = "u1", session: str = "s1") -> Offer:
    return Offer(f"o{n}", user, session, "bulk_edit_opportunity", f"body {n}", (), T0 + n)


class Recorder:
    """An ``ActionObserver`` that writes down what it is told."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str]] = []

    def added(self, session_id: str, action: SlimAction) -> None:
        self.calls.append(("added", session_id))

    def removed(self, session_id: str, action: SlimAction) -> None:
        self.calls.append(("removed", session_id))

    def dropped(self, session_id: str) -> None:
        self.calls.append(("dropped", session_id))

    def unlinked(self, user_id: str) -> None:
        self.calls.append(("unlinked", user_id))

    def restored(self, session_id: str, action: SlimAction) -> None:
        self.calls.append(("restored", session_id))


# -- ActivityStore ----------------------------------------------------------------------


def test_activity_orders_by_timestamp_and_reports_what_changed(stores: Stores):
    activity = stores.activity
    changed = activity.add([_tracked("u1", "s1", T0 + 2, "b"), _tracked("u1", "s1", T0, "a")], now=T0 + 3)
    assert changed == {("u1", "s1")}
    assert [a.title for a in activity.recent_actions("s1")] == ["a", "b"]
    latest = activity.latest_action("s1")
    assert latest is not None and latest.title == "b"
    payloads = activity.load_payloads(product_id=PRODUCT, session_id="s1")
    assert [a.title for p in payloads for a in p.actions] == ["a", "b"]
    assert activity.user_of("s1") == "u1" and activity.session_count() == 1


def test_activity_stores_a_repeated_event_id_once(stores: Stores):
    stores.activity.add([_tracked("u1", "s1", T0, event_id="e1")], now=T0)
    assert stores.activity.add([_tracked("u1", "s1", T0, event_id="e1")], now=T0 + 1) == set()
    assert len(stores.activity.recent_actions("s1")) == 1


def test_activity_latest_session_is_the_one_with_the_latest_action(stores: Stores):
    activity = stores.activity
    activity.add([_tracked("u1", "old", T0 + 50), _tracked("u1", "new", T0 + 10)], now=T0 + 60)
    assert activity.latest_session("u1") == "old"
    activity.add([_tracked("u1", "new", T0 + 55)], now=T0 + 60)
    assert activity.latest_session("u1") == "new"
    assert dict(activity.latest_sessions()) == {"u1": "new"}
    assert activity.latest_session("nobody") is None and activity.latest_action("nothing") is None


def test_activity_identify_moves_the_session_to_whoever_acted_last(stores: Stores):
    activity = stores.activity
    activity.add([_tracked("anon-1", "s1", T0)], now=T0)
    activity.add([_tracked("u1", "s1", T0 + 1)], now=T0 + 1)
    assert activity.user_of("s1") == "u1" and activity.latest_session("anon-1") is None


def test_activity_is_bounded_and_evicts_idle_sessions(make_stores: Callable[..., Stores]):
    activity = make_stores(max_actions_per_session=3, idle_session_s=100, max_sessions=2).activity
    activity.add([_tracked("u1", "s1", T0 + i) for i in range(5)], now=T0 + 5)
    assert len(activity.recent_actions("s1")) == 3
    activity.add([_tracked("u2", "s2", T0), _tracked("u3", "s3", T0)], now=T0 + 6)
    assert activity.session_count() == 2 and activity.user_of("s1") is None  # least recently seen went
    assert activity.evict(now=T0 + 200) == 2 and activity.session_count() == 0


def test_activity_tells_observers_of_every_change(make_stores: Callable[..., Stores]):
    activity = make_stores(max_actions_per_session=1, idle_session_s=100).activity
    recorder = Recorder()
    activity.add_observer(recorder)
    activity.add([_tracked("u1", "s1", T0), _tracked("u1", "s1", T0 + 1)], now=T0 + 1)
    activity.evict(now=T0 + 500)
    assert recorder.calls == [("added", "s1"), ("added", "s1"), ("removed", "s1"), ("dropped", "s1"), ("unlinked", "u1")]


# -- SessionStateStore ------------------------------------------------------------------


def test_session_states_persist_what_was_saved(stores: Stores):
    states = stores.session_states
    assert states.get("s1") is None
    state = states.get_or_create("s1")
    state.transition_to_reactive()
    state.metadata["last_offer"] = {"offer_id": "o1"}
    states.save(state)
    again = states.get("s1")
    assert again is not None and again.current_state is AgentStateV2.REACTIVE
    assert again.metadata["last_offer"] == {"offer_id": "o1"}
    assert list(states.session_ids()) == ["s1"]
    states.delete("s1")
    assert states.get("s1") is None and list(states.session_ids()) == []


# -- OfferHistoryStore --------------------------------------------------------------------


def test_offer_history_keeps_a_day_oldest_first(stores: Stores):
    history = stores.offer_history
    assert history.delivered("u1", T0) is None
    history.record("u1", "s1", T0)
    history.record("u1", "s2", T0 + 10)
    delivered = history.delivered("u1", T0 + 20)
    assert delivered is not None and list(delivered.times) == [T0, T0 + 10] and list(delivered.sessions) == ["s1", "s2"]
    later = history.delivered("u1", T0 + 86400)
    assert later is not None and list(later.sessions) == ["s2"]
    assert history.delivered("u1", T0 + 86410) is None and history.user_count() == 0


# -- OfferStore ---------------------------------------------------------------------------


def test_pending_offers_are_taken_once_or_expire_unseen(stores: Stores):
    offers = stores.offers
    offers.park(_offer(1), expires_at=T0 + 120)
    offers.park(_offer(2, user="u2", session="s2"), expires_at=T0 + 120)
    assert offers.has_pending("s1") and offers.pending_count() == 2
    assert [o.offer_id for o in offers.take_pending("u1", T0 + 5)] == ["o1"]
    assert offers.take_pending("u1", T0 + 6) == [] and not offers.has_pending("s1")
    assert [o.offer_id for o in offers.expire(T0 + 120)] == ["o2"]
    assert offers.expired_unseen("s2") and not offers.expired_unseen("s1") and offers.pending_count() == 0
    offers.clear_expired("s2")
    assert not offers.expired_unseen("s2")


def test_an_offer_taken_after_its_expiry_is_not_returned(stores: Stores):
    stores.offers.park(_offer(1), expires_at=T0 + 10)
    assert stores.offers.take_pending("u1", T0 + 11) == []


def test_replay_gives_exactly_what_was_missed_within_the_window(config: ProactiveConfig, make_stores: Callable[..., Stores]):
    offers = make_stores().offers
    for n in range(1, 4):
        offers.record_delivered(_offer(n), T0 + n)
    assert [o.offer_id for o in offers.missed_since("u1", "o1", T0 + 4)] == ["o2", "o3"]
    assert offers.missed_since("u1", "o3", T0 + 4) == []
    assert offers.missed_since("u1", "unknown", T0 + 4) == []  # replaying all could repeat toasts
    offers.expire(T0 + 3 + config.delivery.replay_s + 1)
    assert offers.missed_since("u1", "o1", T0 + 3 + config.delivery.replay_s + 1) == []


def test_a_stream_s_cursor_replays_what_was_delivered_since_it_opened(config: ProactiveConfig,
                                                                     make_stores: Callable[..., Stores]):
    offers = make_stores().offers
    offers.record_delivered(_offer(1), T0 + 1)
    opened = T0 + 1.5 + CURSOR_MARGIN_S  # a stream opened then, and went before its first offer
    for n in (2, 3):
        offers.record_delivered(_offer(n), opened + n)
    cursor = stream_cursor(opened)
    assert [o.offer_id for o in offers.missed_since("u1", cursor, opened + 4)] == ["o2", "o3"]
    assert offers.missed_since("u2", cursor, opened + 4) == []
    assert offers.missed_since("u1", stream_cursor(opened + 4 + CURSOR_MARGIN_S), opened + 4) == []
    assert [o.offer_id for o in offers.missed_since("u1", stream_cursor(opened + 3 + CURSOR_MARGIN_S), opened + 4)] == ["o3"]
    late = opened + 3 + config.delivery.replay_s + 1
    offers.expire(late)
    assert offers.missed_since("u1", cursor, late) == []  # past the window, as for an offer's id


# -- ChatOwnerStore, FirstNameStore, ClockSkewStore ------------------------------------------


def test_a_chat_session_belongs_to_its_first_claimant_until_released(stores: Stores):
    owners = stores.chat_owners
    assert owners.owner("chat-1") is None
    assert owners.claim("chat-1", "u1") == "u1"
    assert owners.claim("chat-1", "u2") == "u1"
    owners.release("chat-1")
    assert owners.owner("chat-1") is None and owners.claim("chat-1", "u2") == "u2"


def test_first_names_keep_the_latest(stores: Stores):
    stores.first_names.set("u1", "Ada")
    stores.first_names.set("u1", "Grace")
    assert stores.first_names.get("u1") == "Grace" and stores.first_names.get("u2") is None


def test_clock_skew_keeps_the_smallest_recent_offset(stores: Stores):
    skew = stores.clock_skew
    assert skew.offset("browser", 5.0, now=T0) == 5.0
    assert skew.offset("browser", 9.0, now=T0 + 1) == 5.0  # transit only adds
    assert skew.offset("browser", 2.0, now=T0 + 2) == 2.0
    assert len(skew) == 1
    assert skew.expire(now=T0 + 10_000) == 1 and len(skew) == 0


# -- TickPlan -------------------------------------------------------------------------------


def test_the_tick_plan_returns_each_due_session_once(stores: Stores):
    plan = stores.tick_plan
    plan.wake_at("now", NOW)
    plan.wake_at("later", T0 + 10)
    plan.watch("gated", 100.0)
    assert plan.due(T0, 50.0) == ["now"]
    assert plan.due(T0, 50.0) == []
    assert plan.due(T0 + 10, 100.0) == ["gated", "later"]
    plan.wake_at("forgotten", NOW)
    plan.forget("forgotten")
    plan.watch("settled", 200.0)
    plan.settle("settled", float("inf"))  # the gate is open and nothing will change: not planned
    assert plan.due(T0 + 1000, 1000.0) == []


def test_a_new_plan_replaces_the_old_one(stores: Stores):
    plan = stores.tick_plan
    plan.wake_at("s1", T0 + 10)
    plan.wake_at("s1", T0 + 100)
    assert plan.due(T0 + 50, 0.0) == []
    assert plan.due(T0 + 100, 0.0) == ["s1"]


# -- OfferLedgerStore -------------------------------------------------------------------------


def test_the_ledger_keeps_records_and_each_user_s_latest_offer_per_trigger(stores: Stores):
    ledger = stores.ledger
    first = OfferRecord("o1", "u1", "s1", "t1", T0)
    ledger.add(first)
    ledger.add(OfferRecord("o2", "u1", "s1", "t2", T0 + 1))
    ledger.add(OfferRecord("o3", "u2", "s2", "t1", T0 + 2))
    assert ledger.latest("u1", "t1") == first and ledger.latest("u3", "t1") is None
    record = ledger.get("o1")
    assert record is not None
    record.group = "shown"
    record.stages.add("delivered")
    ledger.save(record)
    assert ledger.get("o1") == OfferRecord("o1", "u1", "s1", "t1", T0, group="shown", stages={"delivered"})
    ledger.add(OfferRecord("o4", "u1", "s1", "t1", T0 + 3))
    latest = ledger.latest("u1", "t1")
    assert latest is not None and latest.offer_id == "o4"
    assert ledger.get("nope") is None


def test_ledger_counts_sum_per_trigger_over_inclusive_days(stores: Stores):
    ledger = stores.ledger
    ledger.increment("2026-05-01", "t1", "stage:fired")
    ledger.increment("2026-05-02", "t1", "stage:fired", 2)
    ledger.increment("2026-05-02", "t2", "dismissed:escape")
    ledger.increment("2026-05-03", "t1", "stage:fired", 4)
    assert ledger.totals("2026-05-01", "2026-05-02") == {"t1": {"stage:fired": 3}, "t2": {"dismissed:escape": 1}}
    assert ledger.totals("2026-05-04", "2026-05-09") == {}


def test_ledger_baselines_are_per_user_and_trigger(stores: Stores):
    ledger = stores.ledger
    assert ledger.baseline_at("u1", "t1") is None
    ledger.note_baseline("u1", "t1", T0)
    assert ledger.baseline_at("u1", "t1") == T0 and ledger.baseline_at("u1", "t2") is None

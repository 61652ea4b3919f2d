"""InMemoryActivityStore: ordering by timestamp, dedup, identify, and every bound it promises."""

from __future__ import annotations

import gc
import time

from autoplay_sdk.core.models import ActionsPayload, SlimAction
from autoplay_sdk.proactive.triggers.context_source import RecentActionsPayloadSource

from addons.config import ActivityLimits
from addons.offers.ingest import TrackedAction
from addons.stores.memory import InMemoryActivityStore
from addons.stores.memory.activity import SessionActivity

T0 = 1779188762.919
PRODUCT = "demo-app"


def _store(**limits) -> InMemoryActivityStore:
    return InMemoryActivityStore(ActivityLimits(**limits), product_id=PRODUCT)


def _act(ts: float, *, user: str = "user-1", session: str = "sess-1", title: str = "Save changes", event_id=None):
    action = SlimAction(
        title=title,
        description=f"User clicked '{title}'",
        canonical_url="https://app.example.com/projects",
        type="click",
        timestamp_start=ts,
        timestamp_end=ts,
        raw_url="https://app.example.com/projects",
        session_id=session,
        user_id=user,
    )
    return TrackedAction(user_id=user, session_id=session, action=action, event_id=event_id)


def _titles(store: InMemoryActivityStore, session: str = "sess-1"):
    return [a.title for a in store.recent_actions(session)]


def test_actions_are_kept_sorted_by_timestamp_whatever_the_arrival_order():
    store = _store()
    store.add([_act(T0 + 3, title="c"), _act(T0 + 1, title="a")], now=T0 + 10)
    store.add([_act(T0 + 2, title="b"), _act(T0 + 5, title="e")], now=T0 + 11)
    store.add([_act(T0 + 4, title="d")], now=T0 + 12)
    assert _titles(store) == ["a", "b", "c", "d", "e"]
    stamps = [a.timestamp_start for a in store.recent_actions("sess-1")]
    assert stamps == sorted(stamps)


def test_add_reports_the_changed_user_session_pairs():
    store = _store()
    changed = store.add([_act(T0, user="u1", session="s1"), _act(T0, user="u2", session="s2")], now=T0)
    assert changed == {("u1", "s1"), ("u2", "s2")}


def test_latest_session_is_the_one_with_the_largest_action_timestamp():
    store = _store()
    store.add([_act(T0 + 100, session="old-but-late")], now=T0)  # latest action by timestamp
    store.add([_act(T0 + 10, session="arrived-last")], now=T0 + 1)  # most recently ingested
    assert store.latest_session("user-1") == "old-but-late"
    assert dict(store.latest_sessions()) == {"user-1": "old-but-late"}
    assert store.latest_session("nobody") is None


def test_duplicate_event_uuid_from_a_posthog_retry_is_stored_once():
    store = _store()
    first = store.add([_act(T0, event_id="evt-1"), _act(T0 + 1, event_id="evt-2")], now=T0 + 2)
    retry = store.add([_act(T0, event_id="evt-1"), _act(T0 + 1, event_id="evt-2")], now=T0 + 3)
    assert first == {("user-1", "sess-1")}
    assert retry == set()  # nothing new: nothing to re-evaluate
    assert len(store.recent_actions("sess-1")) == 2
    assert store.action_count() == 2


def test_events_without_uuid_are_never_deduplicated():
    store = _store()
    store.add([_act(T0), _act(T0)], now=T0)
    assert len(store.recent_actions("sess-1")) == 2


def test_identify_rebinds_the_session_from_the_anonymous_id_to_the_user():
    store = _store()
    anon = "01890f2c-anon-device-id"
    store.add([_act(T0, user=anon, title="before identify")], now=T0)
    assert store.latest_session(anon) == "sess-1"
    store.add([_act(T0 + 5, user="alice@acme", title="after identify")], now=T0 + 5)
    assert store.user_of("sess-1") == "alice@acme"
    assert store.latest_session("alice@acme") == "sess-1"
    assert store.latest_session(anon) is None
    assert anon not in store._user_sessions  # no empty per-user entry left behind
    assert dict(store.latest_sessions()) == {"alice@acme": "sess-1"}
    # what the session did before identify now belongs to the user
    assert _titles(store) == ["before identify", "after identify"]
    assert store.load_payloads(product_id=PRODUCT, session_id="sess-1")[0].user_id == "alice@acme"


def test_retried_pre_identify_event_does_not_move_the_session_back_to_the_anonymous_id():
    store = _store()
    anon = "01890f2c-anon-device-id"
    store.add([_act(T0, user=anon, event_id="evt-anon")], now=T0)
    store.add([_act(T0 + 5, user="alice@acme", event_id="evt-alice")], now=T0 + 5)
    store.add([_act(T0, user=anon, event_id="evt-anon")], now=T0 + 6)  # the retry
    assert len(store.recent_actions("sess-1")) == 2  # the retry is deduplicated...
    assert store.user_of("sess-1") == "alice@acme"  # ...but today it still re-binds the session
    assert store.latest_session("alice@acme") == "sess-1"


def test_a_session_s_revision_moves_with_every_change_to_it_and_only_then():
    store = _store(retention_s=60.0)
    assert store.revision_of("s1") == 0  # not stored
    store.add([_act(T0, session="s1", event_id="e1"), _act(T0, session="s2")], now=T0)
    first = store.revision_of("s1")
    assert first > 0 and store.revision_of("s2") not in (0, first)
    # Reading a session, or changing another, leaves its revision where it was.
    store.recent_actions("s1"), store.latest_action("s1"), store.export_session("s1"), store.latest_session("user-1")
    store.load_payloads(product_id=PRODUCT, session_id="s1")
    store.add([_act(T0 + 1, session="s2")], now=T0 + 1)
    assert store.revision_of("s1") == first
    changes = {
        "an action": lambda: store.add([_act(T0 + 2, session="s1")], now=T0 + 2),
        "a retried one (seen again: idle eviction counts from now)": lambda: store.add(
            [_act(T0, session="s1", event_id="e1")], now=T0 + 3),
        "identify": lambda: store.add([_act(T0 + 4, session="s1", user="alice@acme")], now=T0 + 4),
        "an ingest whose retention drops the oldest": lambda: store.add([_act(T0 + 70, session="s1")], now=T0 + 70),
    }
    for what, change in changes.items():
        before = store.revision_of("s1")
        change()
        assert store.revision_of("s1") > before, what
    assert len(store.recent_actions("s1")) == 1  # the trim happened: only the newest is within retention
    seen = {store.revision_of("s1"), store.revision_of("s2")}
    moved_in = _act(T0 + 71, session="s1", user="alice@acme").action
    moved_in.index = 1000
    store.import_session("s1", SessionActivity(user_id="alice@acme", last_seen=T0 + 71, actions=((moved_in, None),),
                                               event_ids=frozenset()), now=T0 + 71)
    assert store.revision_of("s1") > max(seen)  # replaced: a revision never given before
    store.remove_session("s1")
    assert store.revision_of("s1") == 0


def test_retention_drops_actions_older_than_retention_s():
    store = _store(retention_s=60.0)
    store.add([_act(T0, title="old"), _act(T0 + 30, title="middle")], now=T0 + 30)
    store.add([_act(T0 + 80, title="new")], now=T0 + 80)  # cutoff = T0 + 20
    assert _titles(store) == ["middle", "new"]


def test_action_already_past_retention_when_it_arrives_is_not_kept():
    store = _store(retention_s=60.0)
    store.add([_act(T0 - 61, title="stale"), _act(T0, title="fresh")], now=T0)
    assert _titles(store) == ["fresh"]


def test_per_session_cap_keeps_the_newest_actions_by_timestamp():
    store = _store(max_actions_per_session=3)
    store.add([_act(T0 + i, title=f"a{i}") for i in (5, 1, 4)], now=T0 + 10)
    store.add([_act(T0 + i, title=f"a{i}") for i in (2, 6, 3)], now=T0 + 10)
    assert _titles(store) == ["a4", "a5", "a6"]


def test_evict_drops_only_sessions_idle_longer_than_idle_session_s():
    store = _store(idle_session_s=100.0)
    store.add([_act(T0, user="u1", session="s1")], now=T0)
    store.add([_act(T0, user="u2", session="s2")], now=T0 + 50)
    assert store.evict(now=T0 + 100) == 0  # s1 idle for exactly the limit: kept
    assert store.evict(now=T0 + 101) == 1
    assert (store.user_of("s1"), store.user_of("s2")) == (None, "u2")
    assert store.latest_session("u1") is None
    assert store.session_count() == 1
    assert set(store._user_sessions) == {"u2"}  # evicted users leave nothing behind


def test_a_new_event_keeps_a_session_from_being_evicted():
    store = _store(idle_session_s=100.0)
    store.add([_act(T0, session="s1")], now=T0)
    store.add([_act(T0 + 1, session="s2", user="u2")], now=T0 + 1)
    store.add([_act(T0 + 90, session="s1")], now=T0 + 90)  # s1 becomes the most recently seen
    assert store.evict(now=T0 + 150) == 1
    assert store.user_of("s1") == "user-1" and store.user_of("s2") is None


def test_max_sessions_evicts_the_least_recently_active_session():
    store = _store(max_sessions=3)
    for i, sid in enumerate(["s1", "s2", "s3"]):
        store.add([_act(T0 + i, user=f"u-{sid}", session=sid)], now=T0 + i)
    store.add([_act(T0 + 10, user="u-s1", session="s1")], now=T0 + 10)  # s1 active again
    store.add([_act(T0 + 11, user="u-s4", session="s4")], now=T0 + 11)
    assert store.session_count() == 3
    assert store.user_of("s2") is None
    assert {store.user_of(s) for s in ("s1", "s3", "s4")} == {"u-s1", "u-s3", "u-s4"}
    assert store.latest_session("u-s2") is None


def test_store_is_an_sdk_recent_actions_payload_source_with_chronological_payloads():
    store = _store()
    assert isinstance(store, RecentActionsPayloadSource)
    tracked = [_act(T0 + 2, title="b"), _act(T0 + 1, title="a"), _act(T0 + 3, title="c")]
    tracked[0].action.email = "alice@acme.test"
    store.add(tracked, now=T0 + 4)
    payloads = store.load_payloads(product_id=PRODUCT, session_id="sess-1")
    assert len(payloads) == 1
    payload = payloads[0]
    assert isinstance(payload, ActionsPayload)
    assert [a.title for a in payload.actions] == ["a", "b", "c"]
    assert (payload.product_id, payload.session_id, payload.user_id) == (PRODUCT, "sess-1", "user-1")
    assert payload.count == 3
    assert payload.email == "alice@acme.test"
    assert payload.forwarded_at == T0 + 4
    assert store.load_payloads(product_id=PRODUCT, session_id="unknown") == []


def test_stored_actions_come_back_whole_and_are_invisible_to_the_garbage_collector():
    store = _store()
    tracked = _act(T0, event_id="e-1")
    tracked.action.email = "alice@acme.test"
    store.add([tracked], now=T0)
    assert store.recent_actions("sess-1") == [tracked.action]  # every SlimAction field, index included
    assert store.latest_action("sess-1") == tracked.action
    gc.collect()
    # Full collections walk every tracked object; stored actions must not be among them
    # (only exact tuples of strings, numbers and None are untracked, not NamedTuples).
    session = store._sessions["sess-1"]
    assert not any(gc.is_tracked(entry) for entry in session.entries)


def test_bounds_hold_under_100k_events():
    store = _store(max_actions_per_session=50, max_sessions=500, retention_s=1e9, idle_session_s=1e9)
    started = time.perf_counter()
    n_events, n_sessions = 100_000, 1_000
    for start in range(0, n_events, 2_000):
        batch = []
        for i in range(start, start + 2_000):
            session = i % n_sessions
            batch.append(_act(T0 + i * 0.01, user=f"user-{session % 300}", session=f"s-{session}", title=f"a{i}"))
        store.add(batch, now=T0 + start * 0.01)
        assert store.session_count() <= 500
    elapsed = time.perf_counter() - started

    assert store.session_count() == 500
    per_session = [len(store.recent_actions(f"s-{s}")) for s in range(n_sessions)]
    assert max(per_session) == 50
    assert sum(per_session) == store.action_count() == 500 * 50
    # the survivors are the most recently active sessions, each holding its newest actions
    newest = store.recent_actions("s-999")
    assert [a.title for a in newest][-1] == "a99999"
    assert all(len(store.recent_actions(f"s-{s}")) == 0 for s in range(500))
    assert sum(1 for _ in store.latest_sessions()) <= 300
    assert elapsed < 10.0

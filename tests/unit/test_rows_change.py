"""How a unit of work keeps a session's action rows in Redis (``units.rows_change``): a model of
the Redis list, changed only by what ``rows_change`` says, must always hold the session's rows
as the activity store has them, whatever arrives: in order, late, retried, or past the bounds.
No server: the list is a Python list applying the commit script's two operations."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any, List, Optional

import pytest
from autoplay_sdk.core.models import SlimAction

from addons.config import ActivityLimits, load_config
from addons.offers.ingest import TrackedAction
from addons.stores.memory import memory_stores
from addons.stores.protocols import Stores
from addons.stores.redis.units import rows_change
from addons.stores.redis.user_states import RowsChange, compact_json
from addons.stores.user_state import session_rows
from conftest import PROACTIVE_YML

T0 = 1779188762.919
SID, USER = "s1", "u1"


def _store(max_actions: int = 8, retention_s: float = 1800.0) -> Stores:
    config = load_config(PROACTIVE_YML)
    limits = ActivityLimits(retention_s=retention_s, max_actions_per_session=max_actions)
    return memory_stores(replace(config, activity=limits))


def _add(store: Stores, ts: float, event_id: Optional[str] = None, *, now: float = T0) -> None:
    action = SlimAction(title="Save changes", description="", canonical_url="https://app/p", type="click",
                        timestamp_start=ts, timestamp_end=ts, raw_url="https://app/p", session_id=SID, user_id=USER)
    store.activity.add([TrackedAction(user_id=USER, session_id=SID, action=action, event_id=event_id)], now=now)


class _RedisList:
    """The session's list as the commit script changes it: trim then append, or replace."""

    def __init__(self) -> None:
        self.rows: List[str] = []
        self.sequence_numbers: List[int] = []
        self.changes: List[RowsChange] = []

    def sync(self, store: Stores) -> Optional[RowsChange]:
        rows = session_rows(store, SID)
        if rows is None:  # no action yet
            assert not self.sequence_numbers
            return None
        change, after = rows_change(self.sequence_numbers, rows)
        if change is not None:
            self.changes.append(change)
            if change.replace:
                self.rows = list(change.append)
            else:
                self.rows = self.rows[change.trim:] + list(change.append)
        self.sequence_numbers = after
        return change


def _expected(store: Stores) -> List[str]:
    """The session's rows as a list written whole would hold them."""
    rows = session_rows(store, SID)
    return [] if rows is None else [compact_json(row) for row in rows.rows()]


def test_each_new_action_appends_one_row_and_nothing_unchanged_is_sent():
    store, redis_list = _store(), _RedisList()
    for n in range(5):
        _add(store, T0 + n)
        change = redis_list.sync(store)
        assert change is not None and not change.replace and change.trim == 0 and len(change.append) == 1
    assert redis_list.sync(store) is None  # nothing moved: no write at all
    assert redis_list.rows == _expected(store) and redis_list.sequence_numbers == [1, 2, 3, 4, 5]


def test_past_the_bound_the_oldest_are_trimmed_and_the_new_appended():
    store, redis_list = _store(max_actions=3), _RedisList()
    for n in range(3):
        _add(store, T0 + n)
        redis_list.sync(store)
    _add(store, T0 + 3)
    _add(store, T0 + 4)
    change = redis_list.sync(store)
    assert change == RowsChange(append=tuple(_expected(store)[1:]), trim=2)
    assert redis_list.rows == _expected(store)


def test_a_late_action_among_the_rows_writes_the_list_anew():
    store, redis_list = _store(), _RedisList()
    for n in (0, 2, 4):
        _add(store, T0 + n)
        redis_list.sync(store)
    _add(store, T0 + 1)  # sorts between rows already written
    change = redis_list.sync(store)
    assert change is not None and change.replace and redis_list.rows == _expected(store)


def test_a_session_left_without_actions_is_written_as_gone():
    store, redis_list = _store(retention_s=60), _RedisList()
    _add(store, T0)
    redis_list.sync(store)
    _add(store, T0 - 3600, now=T0 + 120)  # past retention, as is the first: both dropped
    assert redis_list.sync(store) == RowsChange(replace=True)
    assert redis_list.rows == [] and redis_list.sequence_numbers == []


@pytest.mark.parametrize("seed", range(20))
def test_whatever_arrives_the_list_follows_the_store(seed: int):
    rng = random.Random(seed)
    store, redis_list = _store(max_actions=rng.choice([3, 8, 40])), _RedisList()
    sent_ids: List[Any] = []
    clock = T0
    for step in range(300):
        for _ in range(rng.choice([0, 1, 1, 1, 2, 5])):  # a unit may ingest several actions, or none
            clock += rng.random()
            kind = rng.random()
            if kind < 0.1 and sent_ids:
                _add(store, clock, rng.choice(sent_ids))  # posthog-js retried a request
            elif kind < 0.25:
                event_id = f"e{step}-{len(sent_ids)}"
                sent_ids.append(event_id)
                _add(store, clock - rng.uniform(0, 30), event_id)  # late: sorts among rows written
            else:
                event_id = f"e{step}-{len(sent_ids)}"
                sent_ids.append(event_id)
                _add(store, clock, event_id)
        redis_list.sync(store)
        assert redis_list.rows == _expected(store), f"step {step}"
    appended = [c for c in redis_list.changes if not c.replace]
    assert len(appended) > len(redis_list.changes) / 2  # the usual case stays an append

"""Engine operations on one user as units of work over Redis (docs/design/cluster.md): load the
user's document, run the unchanged synchronous engine on an in-memory bundle made from it,
commit the bundle's new document only if nobody committed since, else start over.

Units are batched: one worker per replica takes every unit waiting, loads all their users in
one round trip, runs each user's units in order on one bundle, and commits every user in one
more round trip (each user's commit lands or not on its own). Under load a round trip serves
many requests; alone, a unit waits for nothing. One worker also means the units of one replica
never race each other, only other replicas'.

What a unit did reaches the rest of the process only once its commit landed: the offers it
published (for the caller to hand to streams) and its counts (``StagedCounters``). A unit that
lost the race leaves no trace, so a retry counts and publishes once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Generic, List, Mapping, Optional, Tuple, TypeVar

from addons.config import ProactiveConfig
from addons.errors import StoreUnavailable
from addons.insights.metrics import OfferCounters, StagedCounters
from addons.offers.delivery import DeliveryHub
from addons.offers.engine import ProactiveEngine
from addons.offers.evaluation import FullRescan
from addons.offers.offer import Offer
from addons.stores.memory import InMemoryOfferLedger, memory_stores
from addons.stores.protocols import OfferStore
from addons.stores.redis.user_states import Commit, LoadedState, RedisUserStates
from addons.stores.user_state import export_user, import_user

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 8  # concurrent units on one user: each retry sees the others' commits
MAX_BATCH = 64  # units per round trip


class UserBusy(StoreUnavailable):
    """Units of work on the user kept losing the race; the request may be retried shortly."""


@dataclass(frozen=True)
class UnitResult(Generic[T]):
    value: T
    published: List[Offer]  # offers made during the unit, for the user's streams
    attempts: int


@dataclass(eq=False)
class _Unit(Generic[T]):
    user_id: str
    operation: Callable[[ProactiveEngine], T]
    now: float
    min_streams: int
    done: "asyncio.Future[UnitResult[T]]"
    attempts: int = 0

    def resolve(self, result: UnitResult[T]) -> None:
        if not self.done.done():  # its caller may have gone (cancelled)
            self.done.set_result(result)

    def fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)


@dataclass
class _UserPass:
    """One user's units of a batch, run on one bundle, and what they came to."""

    loaded: LoadedState
    staged: StagedCounters
    ran: List[Tuple[_Unit[Any], Any, List[Offer]]] = field(default_factory=list)
    commit: Optional[Commit] = None


class _UnitHub(DeliveryHub):
    """The unit's hub: it knows how many streams the user has open anywhere (read with the
    state, or more: a stream opening counts itself), and keeps what was published for after
    the commit."""

    def __init__(self, offers: OfferStore, user_id: str) -> None:
        super().__init__(offers)
        self._user_id = user_id
        self.streams = 0
        self.published: List[Offer] = []

    def subscriber_count(self, user_id: Optional[str] = None) -> int:
        return self.streams if user_id in (None, self._user_id) else 0

    def publish(self, offer: Offer, *, now: float = 0.0) -> int:
        self.offers.record_delivered(offer, now)
        self.published.append(offer)
        return self.streams


class UserUnits:
    def __init__(self, config: ProactiveConfig, states: RedisUserStates, *, counters: OfferCounters,
                 incremental: bool = True, max_batch: int = MAX_BATCH) -> None:
        self._config = config
        self._states = states
        self._counters = counters
        self._incremental = incremental
        self._max_batch = max_batch
        self._waiting: Deque[_Unit[Any]] = deque()
        self._worker: Optional["asyncio.Task[None]"] = None

    async def run(self, user_id: str, operation: Callable[[ProactiveEngine], T], *, now: float,
                  min_streams: int = 0) -> UnitResult[T]:
        """``operation`` on an engine holding only ``user_id``'s state, committed atomically.
        ``min_streams``: the user has at least that many toast streams open (one opening now)."""
        loop = asyncio.get_running_loop()
        unit: _Unit[T] = _Unit(user_id, operation, now, min_streams, loop.create_future())
        self._waiting.append(unit)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._work(), name="proactive_units")
        return await unit.done

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    async def _work(self) -> None:
        while self._waiting:
            batch: List[_Unit[Any]] = []
            while self._waiting and len(batch) < self._max_batch:
                unit = self._waiting.popleft()
                if not unit.done.done():
                    batch.append(unit)
            try:
                await self._run_batch(batch)
            except asyncio.CancelledError:
                for unit in batch:
                    unit.fail(StoreUnavailable("the replica is stopping"))
                raise
            except Exception as e:  # the store is away (or a bug): every caller hears of it
                for unit in batch:
                    unit.fail(e)

    async def _run_batch(self, batch: List[_Unit[Any]]) -> None:
        if not batch:
            return
        by_user: Dict[str, List[_Unit[Any]]] = {}
        for unit in batch:
            by_user.setdefault(unit.user_id, []).append(unit)
        loaded = await self._states.load_many(list(by_user))
        passes: List[Optional[_UserPass]] = []
        for state in loaded:
            passes.append(self._run_user(state, by_user[state.user_id]))
            await asyncio.sleep(0)  # the engine is synchronous: let streams and requests in between users
        committing = [p for p in passes if p is not None and p.commit is not None]
        landed = await self._states.commit_many([(p.loaded, p.commit) for p in committing if p.commit is not None])
        retry: List[_Unit[Any]] = []
        for user_pass, ok in zip(committing, landed):
            if ok:
                user_pass.staged.flush(self._counters)
                for unit, value, published in user_pass.ran:
                    unit.resolve(UnitResult(value, published, unit.attempts + 1))
                continue
            logger.debug("units of work on user %s lost a race; again", user_pass.loaded.user_id)
            for unit, _, _ in user_pass.ran:
                unit.attempts += 1
                if unit.attempts >= MAX_ATTEMPTS:
                    unit.fail(UserBusy(f"user {unit.user_id!r} is being updated by too many requests at once; retry"))
                else:
                    retry.append(unit)
        self._waiting.extendleft(reversed(retry))  # first in the next batch, in their order

    def _run_user(self, loaded: LoadedState, units: List[_Unit[Any]]) -> Optional[_UserPass]:
        """The user's units in order on one bundle made from ``loaded``, and the commit of what
        they did. None if a unit raised: it gets the error, nothing of the user is committed,
        and the units after it wait for the next batch (those before it run again there)."""
        user_id = loaded.user_id
        clock = [units[0].now]
        stores = memory_stores(self._config)
        hub = _UnitHub(stores.offers, user_id)
        user_pass = _UserPass(loaded, StagedCounters())
        engine = ProactiveEngine(self._config, stores=stores, hub=hub, clock=lambda: clock[0],
                                 incremental=self._incremental, counters=user_pass.staged)
        try:
            if loaded.state:  # after the engine: its index and tick plan observe the import
                import_user(stores, loaded.state, now=clock[0])
        except Exception as e:  # a document this code cannot read: every unit of the user hears of it
            for unit in units:
                unit.fail(e)
            return None
        for n, unit in enumerate(units):
            clock[0] = unit.now
            hub.streams = max(loaded.streams, unit.min_streams)
            first = len(hub.published)
            try:
                value = unit.operation(engine)
            except Exception as e:
                unit.fail(e)
                self._waiting.extendleft(reversed([u for u in units if u is not unit]))
                return None
            user_pass.ran.append((unit, value, hub.published[first:]))
        now = clock[0]
        state = export_user(stores, user_id, now=now)
        ledger = stores.ledger
        counts = ledger.counts_by_day() if isinstance(ledger, InMemoryOfferLedger) else {}
        # The offers leave for the streams in the commit's own script: committed and sent, or
        # neither. An offer parked while no stream seemed open is announced too (presence can be
        # behind; a replica that holds a stream of the user takes it).
        messages = [json.dumps(offer.to_stored_dict(), separators=(",", ":")) for offer in hub.published]
        if state.get("pending") and hub.streams == 0:
            messages.append(json.dumps({"pending_for": user_id}))
        commit = Commit(state=state if _holds_anything(state) else None,
                        due_at=self._next_due(state, engine, now), counts=counts, messages=messages)
        try:
            commit.check()
        except ValueError as e:
            for unit in units:
                unit.fail(e)
            return None
        user_pass.commit = commit
        return user_pass

    def _next_due(self, state: Mapping[str, Any], engine: ProactiveEngine, now: float) -> Optional[float]:
        """When the periodic pass must next look at the user: the earliest planned look, pending
        expiry or idle eviction (every tick while sessions exist, for the full rescan)."""
        sessions = state.get("activity") or []
        if isinstance(engine.strategy, FullRescan):
            return now + self._config.driver.tick_seconds if sessions else None
        times: List[float] = []
        for plan in (state.get("tick_plan") or {}).values():
            if plan.get("next_tick"):
                times.append(now)
            for key in ("wake_at", "watch_until"):
                if plan.get(key) is not None:
                    times.append(float(plan[key]))
            if plan.get("watched") and plan.get("watch_until") is None:
                times.append(now)
        times += [float(p["expires_at"]) for p in state.get("pending") or []]
        times += [float(s["last_seen"]) + self._config.activity.idle_session_s for s in sessions]
        finite = [t for t in times if math.isfinite(t)]
        return min(finite) if finite else None


def _holds_anything(state: Mapping[str, Any]) -> bool:
    return any(value for key, value in state.items() if key not in ("format", "user_id"))

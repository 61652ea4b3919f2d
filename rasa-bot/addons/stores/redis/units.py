"""Engine operations on one user as units of work over Redis (docs/design/cluster.md): load the
user's document, run the unchanged synchronous engine on an in-memory bundle made from it,
commit the bundle's new document only if nobody committed since, else start over.

What a unit did reaches the rest of the process only once its commit landed: the offers it
published (for the caller to hand to streams) and its counts (``StagedCounters``). A unit that
lost the race leaves no trace, so a retry counts and publishes once.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Generic, List, Mapping, Optional, TypeVar

from addons.config import ProactiveConfig
from addons.errors import StoreUnavailable
from addons.insights.metrics import OfferCounters, StagedCounters
from addons.offers.delivery import DeliveryHub
from addons.offers.engine import ProactiveEngine
from addons.offers.evaluation import FullRescan
from addons.offers.offer import Offer
from addons.stores.memory import InMemoryOfferLedger, memory_stores
from addons.stores.protocols import OfferStore
from addons.stores.redis.user_states import Commit, RedisUserStates
from addons.stores.user_state import export_user, import_user

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 8  # concurrent units on one user: each retry sees the others' commits


class UserBusy(StoreUnavailable):
    """Units of work on the user kept losing the race; the request may be retried shortly."""


@dataclass(frozen=True)
class UnitResult(Generic[T]):
    value: T
    published: List[Offer]  # offers made during the unit, for the user's streams
    attempts: int


class _UnitHub(DeliveryHub):
    """The unit's hub: it knows how many streams the user has open anywhere (the caller says),
    and keeps what was published for after the commit."""

    def __init__(self, offers: OfferStore, user_id: str, streams: int) -> None:
        super().__init__(offers)
        self._user_id = user_id
        self._streams = streams
        self.published: List[Offer] = []

    def subscriber_count(self, user_id: Optional[str] = None) -> int:
        return self._streams if user_id in (None, self._user_id) else 0

    def publish(self, offer: Offer, *, now: float = 0.0) -> int:
        self.offers.record_delivered(offer, now)
        self.published.append(offer)
        return self._streams


class UserUnits:
    def __init__(self, config: ProactiveConfig, states: RedisUserStates, *, counters: OfferCounters,
                 incremental: bool = True) -> None:
        self._config = config
        self._states = states
        self._counters = counters
        self._incremental = incremental

    async def run(self, user_id: str, operation: Callable[[ProactiveEngine], T], *, now: float,
                  streams: int = 0) -> UnitResult[T]:
        """``operation`` on an engine holding only ``user_id``'s state, committed atomically.
        ``streams``: how many toast streams the user has open across the cluster."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            loaded = await self._states.load(user_id)
            stores = memory_stores(self._config)
            hub = _UnitHub(stores.offers, user_id, streams)
            staged = StagedCounters()
            engine = ProactiveEngine(self._config, stores=stores, hub=hub, clock=lambda: now,
                                     incremental=self._incremental, counters=staged)
            if loaded.state:  # after the engine: its index and tick plan observe the import
                import_user(stores, loaded.state, now=now)
            value = operation(engine)
            state = export_user(stores, user_id, now=now)
            ledger = stores.ledger
            counts = ledger.counts_by_day() if isinstance(ledger, InMemoryOfferLedger) else {}
            parked = bool(state.get("pending"))
            # The offers leave for the streams in the commit's own script: committed and sent,
            # or neither. An offer parked while no stream seemed open is announced too (presence
            # can be behind; a replica that holds a stream of the user takes it).
            messages = [json.dumps(offer.to_stored_dict(), separators=(",", ":")) for offer in hub.published]
            if parked and streams == 0:
                messages.append(json.dumps({"pending_for": user_id}))
            commit = Commit(state=state if _holds_anything(state) else None,
                            due_at=self._next_due(state, engine, now), counts=counts, messages=messages)
            if await self._states.commit(loaded, commit):
                staged.flush(self._counters)
                return UnitResult(value, hub.published, attempt)
            logger.debug("unit of work on user %s lost a race (attempt %d); again", user_id, attempt)
        raise UserBusy(f"user {user_id!r} is being updated by too many requests at once; retry")

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

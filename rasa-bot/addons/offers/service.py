"""The copilot's offers as the runtime uses them, in one process or shared by several.

``LocalOffers`` is the engine of this process, as it always was. ``SharedOffers``
(``addons.stores.redis.offers``) runs each operation as a unit of work on the user's state in
Redis (docs/design/cluster.md). The runtime writes an operation once, as a function of an
engine, and either runs it.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Protocol, TypeVar

from addons.offers.delivery import Subscription
from addons.offers.engine import ProactiveEngine, TickReport
from addons.offers.ingest import NormalisedBatch

T = TypeVar("T")


class OfferService(Protocol):
    async def start(self) -> None:
        ...

    async def close(self) -> None:
        """Server shutdown: every open stream ends."""

    async def run(self, user_id: str, operation: Callable[[ProactiveEngine], T], *, now: float) -> T:
        """``operation`` on an engine that holds ``user_id``'s state."""

    async def ingest(self, batch: NormalisedBatch, *, now: float) -> None:
        ...

    async def open_stream(self, user_id: str, last_event_id: Optional[str], *, now: float) -> Subscription:
        """A toast stream opens: what it missed (``last_event_id``), then pending offers."""

    async def close_stream(self, subscription: Subscription) -> None:
        ...

    async def tick(self, *, now: float) -> TickReport:
        """The periodic pass (timeouts, time-based triggers, expiry, eviction)."""

    async def totals(self, first_day: str, last_day: str) -> Dict[str, Dict[str, int]]:
        """The insights' counts per trigger over whole days."""

    def stats(self) -> Dict[str, Optional[int]]:
        """Counts for /health (None: not known to one replica)."""


class LocalOffers:
    """The engine of this process."""

    def __init__(self, engine: ProactiveEngine) -> None:
        self.engine = engine

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.engine.close_streams()

    async def run(self, user_id: str, operation: Callable[[ProactiveEngine], T], *, now: float) -> T:
        return operation(self.engine)

    async def ingest(self, batch: NormalisedBatch, *, now: float) -> None:
        self.engine.ingest(batch, now=now)

    async def open_stream(self, user_id: str, last_event_id: Optional[str], *, now: float) -> Subscription:
        return self.engine.subscribe(user_id, last_event_id=last_event_id, now=now)

    async def close_stream(self, subscription: Subscription) -> None:
        self.engine.unsubscribe(subscription)

    async def tick(self, *, now: float) -> TickReport:
        return self.engine.tick(now=now)

    async def totals(self, first_day: str, last_day: str) -> Dict[str, Dict[str, int]]:
        return self.engine.stores.ledger.totals(first_day, last_day)

    def stats(self) -> Dict[str, Optional[int]]:
        return dict(self.engine.stats())

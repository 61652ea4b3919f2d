"""Offers and the hub that fans them out to each user's open toast streams."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Protocol, Set, Tuple, Union

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TourOffer:
    id: str
    flow_id: str
    label: str


@dataclass(frozen=True)
class Offer:
    """One proactive offer, as the toast receives it."""

    offer_id: str
    user_id: str
    session_id: str
    trigger_id: str
    body: str
    tours: Tuple[TourOffer, ...]
    created_at: float

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["tours"] = [asdict(t) for t in self.tours]
        return data


class _Closed:
    """Sent to a subscription when the server shuts down."""


CLOSED = _Closed()
Delivery = Union[Offer, _Closed, None]  # None: nothing arrived before the timeout


class Subscription:
    """One open stream of one user: a bounded queue the hub fills."""

    def __init__(self, user_id: str, maxsize: int) -> None:
        self.user_id = user_id
        self._queue: "asyncio.Queue[Union[Offer, _Closed]]" = asyncio.Queue(maxsize=maxsize)

    async def next(self, timeout: float) -> Delivery:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    def put(self, item: Union[Offer, _Closed]) -> None:
        if self._queue.full():
            dropped = self._queue.get_nowait()  # a stalled reader keeps the newest offers
            logger.warning("stream of user %s is not reading; dropped %r", self.user_id, dropped)
        self._queue.put_nowait(item)


class DeliveryHub(Protocol):
    """Fan-out of offers to subscribers (in memory here; shared pub/sub later)."""

    def subscribe(self, user_id: str) -> Subscription:
        ...

    def unsubscribe(self, subscription: Subscription) -> None:
        ...

    def publish(self, offer: Offer) -> int:
        """Queue the offer for each of the user's subscribers; returns how many."""

    def subscriber_count(self, user_id: Optional[str] = None) -> int:
        ...

    def close_all(self) -> None:
        ...


class InMemoryDeliveryHub:
    def __init__(self, queue_size: int = 16) -> None:
        self._queue_size = queue_size
        self._subscribers: Dict[str, Set[Subscription]] = {}

    def subscribe(self, user_id: str) -> Subscription:
        subscription = Subscription(user_id, self._queue_size)
        self._subscribers.setdefault(user_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.user_id)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.user_id]

    def publish(self, offer: Offer) -> int:
        subscribers = self._subscribers.get(offer.user_id, ())
        for subscription in subscribers:
            subscription.put(offer)
        return len(subscribers)

    def subscriber_count(self, user_id: Optional[str] = None) -> int:
        if user_id is not None:
            return len(self._subscribers.get(user_id, ()))
        return sum(len(s) for s in self._subscribers.values())

    def close_all(self) -> None:
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.put(CLOSED)

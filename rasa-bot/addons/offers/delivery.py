"""The hub that fans offers out to each user's open toast streams.

Streams are live connections of this process; what must outlive them (pending offers, the
replay history a reconnecting stream reads) is in the ``OfferStore``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Dict, List, Optional, Set, Union

from addons.offers.offer import Offer
from addons.stores.protocols import OfferStore

logger = logging.getLogger(__name__)


class _Closed:
    """Sent to a subscription when the server shuts down."""


CLOSED = _Closed()
Delivery = Union[Offer, _Closed, None]  # None: nothing arrived before the timeout


class Subscription:
    """One open stream of one user: a bounded queue the hub fills."""

    def __init__(self, user_id: str, maxsize: int, *, opened_at: float = 0.0) -> None:
        self.user_id = user_id
        self.opened_at = opened_at  # epoch seconds: where a replay of what it missed starts (``stream_cursor``)
        self._queue: "asyncio.Queue[Union[Offer, _Closed]]" = asyncio.Queue(maxsize=maxsize)

    async def next(self, timeout: float) -> Delivery:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    def drain(self) -> List[Offer]:
        """What is queued, taken at once (a unit of work's replay, handed to the real stream)."""
        taken: List[Offer] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, Offer):
                taken.append(item)
        return taken

    def put(self, item: Union[Offer, _Closed]) -> None:
        if self._queue.full():
            dropped = self._queue.get_nowait()  # a stalled reader keeps the newest offers
            logger.warning("stream of user %s is not reading; dropped %r", self.user_id, dropped)
        self._queue.put_nowait(item)


class DeliveryHub:
    """Live fan-out to this process's subscribers; delivered offers are recorded in the store."""

    def __init__(self, offers: OfferStore, *, queue_size: int = 16) -> None:
        self.offers = offers
        self._queue_size = queue_size
        self._subscribers: Dict[str, Set[Subscription]] = {}

    def subscribe(self, user_id: str, *, last_event_id: Optional[str] = None, now: float = 0.0) -> Subscription:
        """A new stream; with ``last_event_id``, the offers delivered after it are queued first."""
        missed = self.offers.missed_since(user_id, last_event_id, now) if last_event_id else []
        subscription = Subscription(user_id, self._queue_size, opened_at=now)
        self._subscribers.setdefault(user_id, set()).add(subscription)
        for offer in missed:
            subscription.put(offer)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.user_id)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.user_id]

    def publish(self, offer: Offer, *, now: float = 0.0) -> int:
        """Queue the offer for each of the user's subscribers; returns how many."""
        subscribers = self._subscribers.get(offer.user_id, ())
        for subscription in subscribers:
            subscription.put(offer)
        self.offers.record_delivered(offer, now)
        return len(subscribers)

    def subscriber_count(self, user_id: Optional[str] = None) -> int:
        if user_id is not None:
            return len(self._subscribers.get(user_id, ()))
        return sum(len(s) for s in self._subscribers.values())

    def close_all(self) -> None:
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.put(CLOSED)

"""Offers and the hub that fans them out to each user's open toast streams."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Deque, Dict, List, Optional, Protocol, Set, Tuple, Union

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
    """Fan-out of offers to subscribers (in memory here; shared pub/sub later).

    Besides live fan-out it keeps two short memories per user: offers that found no open
    stream (pending, until a tab connects or they expire) and offers recently delivered
    (so a stream that reconnects with ``Last-Event-ID`` gets exactly what it missed).
    """

    def subscribe(self, user_id: str, *, last_event_id: Optional[str] = None, now: float = 0.0) -> Subscription:
        """A new stream; with ``last_event_id``, the offers delivered after it are queued first."""

    def unsubscribe(self, subscription: Subscription) -> None:
        ...

    def publish(self, offer: Offer, *, now: float = 0.0) -> int:
        """Queue the offer for each of the user's subscribers; returns how many."""

    def park(self, offer: Offer, *, expires_at: float) -> None:
        """Keep an offer that found no open stream until ``expires_at``."""

    def has_pending(self, session_id: str) -> bool:
        ...

    def take_pending(self, user_id: str, now: float) -> List[Offer]:
        """Remove and return the user's pending offers that have not expired."""

    def expire(self, now: float) -> List[Offer]:
        """Drop expired pending offers (returned) and replay history older than its window."""

    def subscriber_count(self, user_id: Optional[str] = None) -> int:
        ...

    def pending_count(self) -> int:
        ...

    def close_all(self) -> None:
        ...


class InMemoryDeliveryHub:
    def __init__(self, queue_size: int = 16, *, replay_s: float = 300.0, replay_per_user: int = 20) -> None:
        self._queue_size = queue_size
        self._replay_s = replay_s
        self._replay_per_user = replay_per_user
        self._subscribers: Dict[str, Set[Subscription]] = {}
        self._pending: Dict[str, Dict[str, Tuple[Offer, float]]] = {}  # user → offer id → (offer, expires at)
        self._delivered: Dict[str, Deque[Tuple[float, Offer]]] = {}  # user → (delivered at, offer), oldest first

    def subscribe(self, user_id: str, *, last_event_id: Optional[str] = None, now: float = 0.0) -> Subscription:
        subscription = Subscription(user_id, self._queue_size)
        self._subscribers.setdefault(user_id, set()).add(subscription)
        if last_event_id:
            for offer in self._missed_since(user_id, last_event_id, now):
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
        subscribers = self._subscribers.get(offer.user_id, ())
        for subscription in subscribers:
            subscription.put(offer)
        history = self._delivered.setdefault(offer.user_id, deque(maxlen=self._replay_per_user))
        history.append((now, offer))
        return len(subscribers)

    def park(self, offer: Offer, *, expires_at: float) -> None:
        self._pending.setdefault(offer.user_id, {})[offer.offer_id] = (offer, expires_at)

    def has_pending(self, session_id: str) -> bool:
        return any(o.session_id == session_id for offers in self._pending.values() for o, _ in offers.values())

    def take_pending(self, user_id: str, now: float) -> List[Offer]:
        offers = self._pending.pop(user_id, {})
        return [offer for offer, expires_at in offers.values() if expires_at > now]

    def expire(self, now: float) -> List[Offer]:
        expired: List[Offer] = []
        for user_id in list(self._pending):
            offers = self._pending[user_id]
            for offer_id, (offer, expires_at) in list(offers.items()):
                if expires_at <= now:
                    expired.append(offer)
                    del offers[offer_id]
            if not offers:
                del self._pending[user_id]
        for user_id in list(self._delivered):
            history = self._delivered[user_id]
            while history and now - history[0][0] > self._replay_s:
                history.popleft()
            if not history:
                del self._delivered[user_id]
        return expired

    def subscriber_count(self, user_id: Optional[str] = None) -> int:
        if user_id is not None:
            return len(self._subscribers.get(user_id, ()))
        return sum(len(s) for s in self._subscribers.values())

    def pending_count(self) -> int:
        return sum(len(offers) for offers in self._pending.values())

    def close_all(self) -> None:
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.put(CLOSED)

    def _missed_since(self, user_id: str, last_event_id: str, now: float) -> List[Offer]:
        history = [(at, offer) for at, offer in self._delivered.get(user_id, ()) if now - at <= self._replay_s]
        ids = [offer.offer_id for _, offer in history]
        if last_event_id not in ids:
            return []  # unknown or too old: replaying everything could repeat toasts already seen
        return [offer for _, offer in history[ids.index(last_event_id) + 1 :]]

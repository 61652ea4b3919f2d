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
        self._pending_sessions: Dict[str, int] = {}  # session → how many of its offers wait
        # Per user, oldest first: offers and when they went out, side by side (no tuple per
        # offer for the garbage collector to track; see BENCHMARKS.md on full collections).
        self._delivered: Dict[str, Deque[Offer]] = {}
        self._delivered_at: Dict[str, Deque[float]] = {}
        # In time order, so expiring is popping from the front, not scanning every user.
        self._pending_order: Deque[Tuple[float, str, str]] = deque()  # (expires at, user, offer id)
        self._delivered_times: Deque[float] = deque()
        self._delivered_users: Deque[str] = deque()

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
        offers = self._delivered.get(offer.user_id)
        if offers is None:
            offers = self._delivered[offer.user_id] = deque(maxlen=self._replay_per_user)
            self._delivered_at[offer.user_id] = deque(maxlen=self._replay_per_user)
        offers.append(offer)
        self._delivered_at[offer.user_id].append(now)
        self._delivered_times.append(now)
        self._delivered_users.append(offer.user_id)
        return len(subscribers)

    def park(self, offer: Offer, *, expires_at: float) -> None:
        offers = self._pending.setdefault(offer.user_id, {})
        if offer.offer_id not in offers:
            self._pending_sessions[offer.session_id] = self._pending_sessions.get(offer.session_id, 0) + 1
        offers[offer.offer_id] = (offer, expires_at)
        self._pending_order.append((expires_at, offer.user_id, offer.offer_id))

    def has_pending(self, session_id: str) -> bool:
        return session_id in self._pending_sessions

    def take_pending(self, user_id: str, now: float) -> List[Offer]:
        offers = self._pending.pop(user_id, {})
        for offer, _ in offers.values():
            self._unpark(offer)
        return [offer for offer, expires_at in offers.values() if expires_at > now]

    def expire(self, now: float) -> List[Offer]:
        expired: List[Offer] = []
        while self._pending_order and self._pending_order[0][0] <= now:
            _, user_id, offer_id = self._pending_order.popleft()
            offers = self._pending.get(user_id)
            entry = offers.pop(offer_id, None) if offers is not None else None
            if entry is not None:  # else: taken by a tab already
                expired.append(entry[0])
                self._unpark(entry[0])
                if not offers:
                    del self._pending[user_id]
        while self._delivered_times and now - self._delivered_times[0] > self._replay_s:
            at = self._delivered_times.popleft()
            user_id = self._delivered_users.popleft()
            times = self._delivered_at.get(user_id)
            while times and times[0] <= at:
                times.popleft()
                self._delivered[user_id].popleft()
            if times is not None and not times:
                del self._delivered_at[user_id], self._delivered[user_id]
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

    def _unpark(self, offer: Offer) -> None:
        left = self._pending_sessions.get(offer.session_id, 0) - 1
        if left > 0:
            self._pending_sessions[offer.session_id] = left
        else:
            self._pending_sessions.pop(offer.session_id, None)

    def _missed_since(self, user_id: str, last_event_id: str, now: float) -> List[Offer]:
        offers = self._delivered.get(user_id, ())
        times = self._delivered_at.get(user_id, ())
        recent = [offer for at, offer in zip(times, offers) if now - at <= self._replay_s]
        ids = [offer.offer_id for offer in recent]
        if last_event_id not in ids:
            return []  # unknown or too old: replaying everything could repeat toasts already seen
        return recent[ids.index(last_event_id) + 1 :]

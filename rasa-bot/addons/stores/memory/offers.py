"""In-memory ``OfferStore`` (pending, replayable and expired-unseen offers) and
``OfferHistoryStore`` (what the frequency caps count)."""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

from addons.bounded import BoundedMap
from addons.offers.offer import Offer, cursor_time
from addons.stores.protocols import DAY_S


@dataclass(frozen=True)
class UserOffers:
    """One user's offers in an ``InMemoryOfferStore``, as ``export_user`` gives them and
    ``import_user`` takes them (``addons.stores.user_state``). Times are epoch seconds."""

    pending: Tuple[Tuple[Offer, float], ...]  # (offer, expires at), in the order parked
    delivered: Tuple[Tuple[Offer, float], ...]  # (offer, delivered at), oldest first


class InMemoryOfferStore:
    def __init__(self, *, replay_s: float = 300.0, replay_per_user: int = 20, max_sessions: int = 200_000) -> None:
        self._replay_s = replay_s
        self._replay_per_user = replay_per_user
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
        self._expired_unseen: BoundedMap[str, float] = BoundedMap(max_sessions)  # session → when
        self._revision = 0

    @property
    def revision(self) -> int:
        """Changes with every write: while it stands still, so does what ``export_user`` gives
        (a unit of work exports a user's offers again only then)."""
        return self._revision

    def park(self, offer: Offer, *, expires_at: float) -> None:
        offers = self._pending.setdefault(offer.user_id, {})
        if offer.offer_id not in offers:
            self._pending_sessions[offer.session_id] = self._pending_sessions.get(offer.session_id, 0) + 1
        offers[offer.offer_id] = (offer, expires_at)
        self._pending_order.append((expires_at, offer.user_id, offer.offer_id))
        self._revision += 1

    def has_pending(self, session_id: str) -> bool:
        return session_id in self._pending_sessions

    def take_pending(self, user_id: str, now: float) -> List[Offer]:
        offers = self._pending.pop(user_id, {})
        for offer, _ in offers.values():
            self._unpark(offer)
        if offers:
            self._revision += 1
        return [offer for offer, expires_at in offers.values() if expires_at > now]

    def expire(self, now: float) -> List[Offer]:
        expired: List[Offer] = []
        pruned = False
        while self._pending_order and self._pending_order[0][0] <= now:
            expires_at, user_id, offer_id = self._pending_order.popleft()
            offers = self._pending.get(user_id)
            entry = offers.get(offer_id) if offers is not None else None
            if offers is None or entry is None or entry[1] != expires_at:
                continue  # taken by a tab already, or parked again (by an import) with another expiry
            del offers[offer_id]
            expired.append(entry[0])
            self._unpark(entry[0])
            self._expired_unseen.touch(entry[0].session_id, now)
            if not offers:
                del self._pending[user_id]
        while self._delivered_times and now - self._delivered_times[0] > self._replay_s:
            at = self._delivered_times.popleft()
            user_id = self._delivered_users.popleft()
            times = self._delivered_at.get(user_id)
            while times and times[0] <= at:
                times.popleft()
                self._delivered[user_id].popleft()
                pruned = True
            if times is not None and not times:
                del self._delivered_at[user_id], self._delivered[user_id]
        if expired or pruned:
            self._revision += 1
        return expired

    def expired_unseen(self, session_id: str) -> bool:
        return session_id in self._expired_unseen

    def clear_expired(self, session_id: str) -> None:
        if self._expired_unseen.pop(session_id, None) is not None:
            self._revision += 1

    def record_delivered(self, offer: Offer, now: float) -> None:
        offers = self._delivered.get(offer.user_id)
        if offers is None:
            offers = self._delivered[offer.user_id] = deque(maxlen=self._replay_per_user)
            self._delivered_at[offer.user_id] = deque(maxlen=self._replay_per_user)
        offers.append(offer)
        self._delivered_at[offer.user_id].append(now)
        self._delivered_times.append(now)
        self._delivered_users.append(offer.user_id)
        self._revision += 1

    def missed_since(self, user_id: str, last_event_id: str, now: float) -> List[Offer]:
        offers = self._delivered.get(user_id, ())
        times = self._delivered_at.get(user_id, ())
        recent = [(at, offer) for at, offer in zip(times, offers) if now - at <= self._replay_s]
        opened_at = cursor_time(last_event_id)
        if opened_at is not None:  # a stream that had no offer yet: what was delivered since it opened
            return [offer for at, offer in recent if at >= opened_at]
        ids = [offer.offer_id for _, offer in recent]
        if last_event_id not in ids:
            return []  # unknown or too old: replaying everything could repeat toasts already seen
        return [offer for _, offer in recent[ids.index(last_event_id) + 1 :]]

    def pending_count(self) -> int:
        return sum(len(offers) for offers in self._pending.values())

    # -- moving a user between stores (addons.stores.user_state) ---------------------------

    def export_user(self, user_id: str) -> UserOffers:
        """Everything kept for the user, expired or not yet swept (``expire`` and the readers
        apply the times, here as in the store it came from)."""
        return UserOffers(
            pending=tuple(self._pending.get(user_id, {}).values()),
            delivered=tuple(zip(self._delivered.get(user_id, ()), self._delivered_at.get(user_id, ()))),
        )

    def import_user(self, user_id: str, offers: UserOffers) -> None:
        """Replace the user's pending and replayable offers with ``offers`` (the replay
        history keeps its per-user bound). Importing the same offers again changes nothing."""
        self._revision += 1
        previous = self._pending.pop(user_id, {})
        for offer, _ in previous.values():
            self._unpark(offer)
        for offer, expires_at in offers.pending:
            if offer.user_id != user_id:
                raise ValueError(f"pending offer {offer.offer_id!r} is not for user {user_id!r}")
            pending = self._pending.setdefault(user_id, {})
            if offer.offer_id not in pending:
                self._pending_sessions[offer.session_id] = self._pending_sessions.get(offer.session_id, 0) + 1
            pending[offer.offer_id] = (offer, expires_at)
            old = previous.get(offer.offer_id)
            if old is None or old[1] != expires_at:  # else its expiry is queued already
                _insort(self._pending_order, (expires_at, user_id, offer.offer_id))
        known = set(self._delivered_at.get(user_id, ()))  # these times are queued for expiry already
        self._delivered.pop(user_id, None)
        self._delivered_at.pop(user_id, None)
        for offer, at in offers.delivered[-self._replay_per_user:]:
            if offer.user_id != user_id:
                raise ValueError(f"delivered offer {offer.offer_id!r} is not for user {user_id!r}")
            if user_id not in self._delivered:
                self._delivered[user_id] = deque(maxlen=self._replay_per_user)
                self._delivered_at[user_id] = deque(maxlen=self._replay_per_user)
            self._delivered[user_id].append(offer)
            self._delivered_at[user_id].append(at)
            if at not in known:
                position = bisect.bisect_right(self._delivered_times, at)
                self._delivered_times.insert(position, at)
                self._delivered_users.insert(position, user_id)

    def expired_unseen_at(self, session_id: str) -> Optional[float]:
        """When the session's offer expired unseen, if it is marked."""
        return self._expired_unseen.get(session_id)

    def mark_expired_unseen(self, session_id: str, at: float) -> None:
        self._expired_unseen.touch(session_id, at)
        self._revision += 1

    def _unpark(self, offer: Offer) -> None:
        left = self._pending_sessions.get(offer.session_id, 0) - 1
        if left > 0:
            self._pending_sessions[offer.session_id] = left
        else:
            self._pending_sessions.pop(offer.session_id, None)


def _insort(queue: Deque[Tuple[Any, ...]], item: Tuple[Any, ...]) -> None:
    """Insert into a deque kept in order; the usual item goes last, at O(1)."""
    if not queue or queue[-1] <= item:
        queue.append(item)
    else:
        queue.insert(bisect.bisect_right(queue, item), item)


class _Delivered:
    """A user's delivered offers, oldest first: times and sessions side by side (plain floats
    and strings, no tuple per offer for the collector to track)."""

    __slots__ = ("times", "sessions")

    def __init__(self) -> None:
        self.times: Deque[float] = deque()
        self.sessions: Deque[str] = deque()


class InMemoryOfferHistory:
    """Delivered offers per user over the last day; bounded to ``max_users`` users."""

    def __init__(self, *, max_users: int = 200_000) -> None:
        self._users: BoundedMap[str, _Delivered] = BoundedMap(max_users)

    def delivered(self, user_id: str, now: float) -> Optional[_Delivered]:
        history = self._users.get(user_id)
        if history is None:
            return None
        while history.times and now - history.times[0] >= DAY_S:
            history.times.popleft()
            history.sessions.popleft()
        if not history.times:
            del self._users[user_id]
            return None
        return history

    def record(self, user_id: str, session_id: str, at: float) -> None:
        history = self.delivered(user_id, at) or _Delivered()
        history.times.append(at)
        history.sessions.append(session_id)
        self._users.touch(user_id, history)

    def user_count(self) -> int:
        return len(self._users)

    def import_user(self, user_id: str, delivered: Sequence[Tuple[float, str]]) -> None:
        """Replace the user's history with ``delivered`` ((at, session id), oldest first);
        none forgets the user (``addons.stores.user_state``)."""
        self._users.pop(user_id, None)
        if delivered:
            history = _Delivered()
            for at, session_id in sorted(delivered, key=lambda entry: entry[0]):
                history.times.append(at)
                history.sessions.append(session_id)
            self._users.touch(user_id, history)

"""The storage seam: every piece of per-user and per-session state, behind a small protocol.

The engine and its parts only ever talk to these protocols. ``addons.stores.memory`` is the
default backend (one process, nothing to run); another backend is one new module that
implements them all, selected in ``build_stores``. ``tests/unit/test_store_contract.py``
says what any backend must do, and runs over every implementation.

Not here, on purpose: live connections (toast streams, chat sockets) belong to the process
that holds them, and so does the ingest limits' log de-duplication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Deque, Dict, Iterator, List, Optional, Protocol, Sequence, Set, Tuple

from autoplay_sdk.agent_state.v2 import SessionState
from autoplay_sdk.core.models import ActionsPayload, SlimAction

from addons.insights.records import OfferRecord
from addons.offers.ingest import TrackedAction
from addons.offers.offer import Offer

NOW = float("-inf")  # a TickPlan time: at the next tick, whatever its time
DAY_S = 86400.0  # how long an offer history keeps a delivered offer: the caps count the last day's


class ActionObserver(Protocol):
    """Told of every change to an activity store's contents, so indexes stay in step without rescans."""

    def added(self, session_id: str, action: SlimAction) -> None:
        """An action was stored (by ingest or any other writer)."""

    def removed(self, session_id: str, action: SlimAction) -> None:
        """An action was trimmed (retention or the per-session cap)."""

    def dropped(self, session_id: str) -> None:
        """A whole session was evicted; its actions are gone without ``removed`` calls."""

    def unlinked(self, user_id: str) -> None:
        """A session stopped belonging to this user (evicted, or taken over by ``identify``):
        the user's latest session may now be another one."""

    def restored(self, session_id: str, action: SlimAction) -> None:
        """An action was moved in from another store (a user's state imported, see
        ``addons.stores.user_state``), not done now: indexes take it as they take ``added``;
        whoever counts new activity (adoptions) must not count it again."""


class ActivityStore(Protocol):
    """Each session's recent actions, ordered by their own timestamps (batches arrive out of
    order; "latest" means the largest timestamp), bounded in time, size and session count.
    Also autoplay-sdk's ``RecentActionsPayloadSource``."""

    def add_observer(self, observer: ActionObserver) -> None:
        ...

    def add(self, actions: Sequence[TrackedAction], *, now: float) -> Set[Tuple[str, str]]:
        """Store actions (a repeated event id is stored once); returns the (user_id,
        session_id) pairs that changed."""

    def load_payloads(self, *, product_id: str, session_id: str) -> Sequence[ActionsPayload]:
        """``RecentActionsPayloadSource``: the session's actions, chronological."""

    def recent_actions(self, session_id: str) -> List[SlimAction]:
        """The session's actions ordered by timestamp (oldest first)."""

    def latest_action(self, session_id: str) -> Optional[SlimAction]:
        """The action with the largest timestamp; of several, the first stored."""

    def latest_session(self, user_id: str) -> Optional[str]:
        """The user's session holding their latest action by timestamp."""

    def latest_sessions(self) -> Iterator[Tuple[str, str]]:
        """(user_id, latest session_id) for every tracked user."""

    def user_of(self, session_id: str) -> Optional[str]:
        """The user a tracked session belongs to; None once it is evicted."""

    def evict(self, *, now: float) -> int:
        """Drop sessions idle longer than the limit; returns how many went."""

    def session_count(self) -> int:
        ...


class SessionStateStore(Protocol):
    """autoplay-sdk ``SessionState`` per session: what the gate reads and writes."""

    def get(self, session_id: str) -> Optional[SessionState]:
        ...

    def get_or_create(self, session_id: str) -> SessionState:
        ...

    def save(self, state: SessionState) -> None:
        """Persist a state changed in place (a no-op where the store holds live objects)."""

    def delete(self, session_id: str) -> None:
        ...

    def session_ids(self) -> Iterator[str]:
        ...


class DeliveredOffers(Protocol):
    """One user's delivered offers within the last day, oldest first, side by side."""

    times: Deque[float]
    sessions: Deque[str]


class OfferHistoryStore(Protocol):
    """When each user was shown offers, for the frequency caps."""

    def delivered(self, user_id: str, now: float) -> Optional[DeliveredOffers]:
        """The user's offers of the last 24 h (older ones are forgotten); None if none."""

    def record(self, user_id: str, session_id: str, at: float) -> None:
        ...

    def user_count(self) -> int:
        ...


class OfferStore(Protocol):
    """Offers that outlive a moment: pending ones (no toast stream was open), delivered ones
    (replayed to a stream that reconnects with ``Last-Event-ID``), and sessions whose offer
    expired unseen (not offered again on the same evidence)."""

    def park(self, offer: Offer, *, expires_at: float) -> None:
        ...

    def has_pending(self, session_id: str) -> bool:
        ...

    def take_pending(self, user_id: str, now: float) -> List[Offer]:
        """Remove and return the user's pending offers that have not expired."""

    def expire(self, now: float) -> List[Offer]:
        """Drop expired pending offers (returned, and their sessions marked expired-unseen)
        and replay history older than its window."""

    def expired_unseen(self, session_id: str) -> bool:
        ...

    def clear_expired(self, session_id: str) -> None:
        """New activity in the session: its evidence is new, offers may fire again."""

    def record_delivered(self, offer: Offer, now: float) -> None:
        ...

    def missed_since(self, user_id: str, last_event_id: str, now: float) -> List[Offer]:
        """Offers delivered to the user after ``last_event_id``: an offer's id, or a stream's
        cursor (``offer.stream_cursor``: since that stream opened). None if the id is unknown,
        or older than the replay window."""

    def pending_count(self) -> int:
        ...


class ChatOwnerStore(Protocol):
    """Which app user a chat session (Rasa sender id) belongs to."""

    def owner(self, session_id: str) -> Optional[str]:
        ...

    def claim(self, session_id: str, user_id: str) -> str:
        """Give the session to ``user_id`` unless someone owns it; returns the owner."""

    def release(self, session_id: str) -> None:
        ...


class TickPlan(Protocol):
    """Which sessions the periodic tick must look at, and when (see ``addons.offers.schedule``)."""

    def wake_at(self, session_id: str, when: float) -> None:
        """Evaluate the session at the first tick at or after ``when`` (replaces any earlier plan)."""

    def watch(self, session_id: str, until: float) -> None:
        """The session's gate is closed; look again once the gate's clock reads ``until``."""

    def settle(self, session_id: str, when: float) -> None:
        """The gate was open: stop watching; wake when the verdict could next change."""

    def forget(self, session_id: str) -> None:
        ...

    def due(self, now: float, gate_now: float) -> List[str]:
        """Sessions to evaluate now, each once; they leave the plan."""


class FirstNameStore(Protocol):
    """App user id → first name from PostHog person properties."""

    def set(self, user_id: str, first_name: str) -> None:
        ...

    def get(self, user_id: str) -> Optional[str]:
        ...


class ClockSkewStore(Protocol):
    """Per-client clock offsets, for correcting event times with PostHog's ``sent_at``."""

    def offset(self, client: str, observed: float, *, now: float) -> float:
        """Record an observed offset; returns the client's best recent estimate."""

    def expire(self, *, now: float) -> int:
        ...

    def __len__(self) -> int:
        ...


class OfferLedgerStore(Protocol):
    """Offers' lives for the insights: a record per recent offer (bounded), and counts per
    cohort day, trigger and key (``stage:shown``, ``dismissed:escape``…) kept for a number
    of days."""

    def add(self, record: OfferRecord) -> None:
        """A new offer; it becomes the user's latest of its trigger."""

    def get(self, offer_id: str) -> Optional[OfferRecord]:
        ...

    def save(self, record: OfferRecord) -> None:
        """Persist a record changed in place (a no-op where the store holds live objects)."""

    def latest(self, user_id: str, trigger_id: str) -> Optional[OfferRecord]:
        """The user's most recent offer of the trigger, while its record is kept."""

    def increment(self, day: str, trigger_id: str, key: str, amount: int = 1) -> None:
        ...

    def totals(self, first_day: str, last_day: str) -> Dict[str, Dict[str, int]]:
        """trigger id → key → the sum over the days from ``first_day`` to ``last_day`` (inclusive)."""

    def baseline_at(self, user_id: str, trigger_id: str) -> Optional[float]:
        """When the user last adopted with no offer before it (for counting each spell once)."""

    def note_baseline(self, user_id: str, trigger_id: str, at: float) -> None:
        ...


@dataclass
class Stores:
    """One backend's stores, handed to the engine and the chat channel together."""

    activity: ActivityStore
    session_states: SessionStateStore
    offer_history: OfferHistoryStore
    offers: OfferStore
    chat_owners: ChatOwnerStore
    tick_plan: TickPlan
    first_names: FirstNameStore
    clock_skew: ClockSkewStore
    ledger: OfferLedgerStore

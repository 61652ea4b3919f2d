"""The in-memory ``ActivityStore``: per-session recent activity in one process.

Each session's actions are kept ordered by their own timestamps, because PostHog batches
arrive out of order and "latest" always means the largest timestamp. As autoplay-sdk's
``RecentActionsPayloadSource``, trigger contexts are built with the SDK's
``build_proactive_context_from_payloads`` rather than from private SDK state.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterator, List, Optional, Sequence, Set, Tuple

from autoplay_sdk.core.models import ActionsPayload, SlimAction

from addons.config import ActivityLimits
from addons.offers.ingest import TrackedAction
from addons.stores.protocols import ActionObserver


# One stored action: (timestamp, seq, event_id, then the strings and numbers of its
# SlimAction), ordered by (timestamp, seq); seq is unique, so nothing after it is ever
# compared and (t, -1) is a search key. A plain tuple of strings, numbers and None, because
# the garbage collector untracks exactly those (not a NamedTuple, not an object): full
# collections no longer walk every stored action (as SDK objects, 100k sessions × 20
# actions made each a 1.9 s stop; BENCHMARKS.md), and it takes half the memory.
_Entry = Tuple[Any, ...]
_TIMESTAMP, _EVENT_ID = 0, 2
# What each place of an entry holds (``export_session`` gives entries as they are stored).
ENTRY_FIELDS = ("timestamp_start", "index", "event_id", "title", "description", "canonical_url", "type",
                "timestamp_end", "raw_url", "session_id", "user_id", "email", "conversation_id")


def _entry(action: SlimAction, seq: int, event_id: Optional[str]) -> _Entry:
    a = action
    return (a.timestamp_start, seq, event_id, a.title, a.description, a.canonical_url, a.type,
            a.timestamp_end, a.raw_url, a.session_id, a.user_id, a.email, a.conversation_id)


def _action(entry: _Entry) -> SlimAction:
    """The stored action as the SDK's ``SlimAction`` (a new one each time)."""
    (timestamp, seq, _, title, description, canonical_url, type_, timestamp_end, raw_url,
     session_id, user_id, email, conversation_id) = entry
    return SlimAction(
        title=title, description=description, canonical_url=canonical_url, index=seq, type=type_,
        timestamp_start=timestamp, timestamp_end=timestamp_end, raw_url=raw_url,
        session_id=session_id, user_id=user_id, email=email, conversation_id=conversation_id,
    )


@dataclass(frozen=True)
class StoredSession:
    """One session's activity as ``export_session`` reads it: its entries as stored, each a
    tuple laid out as ``ENTRY_FIELDS`` says (no SDK object is made: a user's state is
    exported on every unit of work, ``addons.stores.user_state``)."""

    user_id: str
    last_seen: float
    entries: Tuple[Tuple[Any, ...], ...]  # stored order: by timestamp, then sequence number


@dataclass(frozen=True)
class SessionActivity:
    """One session's activity as ``import_session`` takes it: what moving a user to another
    store needs (``addons.stores.user_state``)."""

    user_id: str
    last_seen: float  # server time of the session's last ingest (idle eviction)
    actions: Tuple[Tuple[SlimAction, Optional[str]], ...]  # (action, its event id), stored order;
    # ``action.index`` is its sequence number, which orders actions of the same timestamp
    event_ids: FrozenSet[str]  # event ids seen (a retried batch counts once)


@dataclass
class _Session:
    user_id: str
    entries: List[_Entry] = field(default_factory=list)
    event_ids: Set[str] = field(default_factory=set)
    last_seen: float = 0.0  # server time of the last ingest, for idle eviction
    revision: int = 0  # the store's count when the session last changed (``revision_of``)

    @property
    def latest_timestamp(self) -> float:
        return self.entries[-1][_TIMESTAMP] if self.entries else float("-inf")


class InMemoryActivityStore:
    """Each method is O(actions of one session) at most."""

    def __init__(self, limits: ActivityLimits, *, product_id: str) -> None:
        self._limits = limits
        self._product_id = product_id
        self._sessions: "OrderedDict[str, _Session]" = OrderedDict()  # least recently seen first
        self._user_sessions: Dict[str, Set[str]] = {}
        self._seq = 0
        self._revision = 0  # moved by every change to a session: a revision is never given twice
        self._observers: List[ActionObserver] = []

    def add_observer(self, observer: ActionObserver) -> None:
        self._observers.append(observer)

    def add(self, actions: Sequence[TrackedAction], *, now: float) -> Set[Tuple[str, str]]:
        changed: Set[Tuple[str, str]] = set()
        for tracked in actions:
            session = self._session_for(tracked, now)
            if tracked.event_id is not None:
                if tracked.event_id in session.event_ids:
                    continue  # posthog-js retried a request that had already arrived
                session.event_ids.add(tracked.event_id)
            if session.user_id != tracked.user_id and tracked.action.timestamp_start >= session.latest_timestamp:
                # posthog-js `identify` swaps the anonymous distinct_id for the app's user id
                # mid-session; the session (and what it did before) belongs to whoever acted last.
                self._rebind(tracked.session_id, session, tracked.user_id)
            self._seq += 1
            tracked.action.index = self._seq
            bisect.insort(session.entries, _entry(tracked.action, self._seq, tracked.event_id))
            for observer in self._observers:
                observer.added(tracked.session_id, tracked.action)
            changed.add((session.user_id, tracked.session_id))
        for _, session_id in changed:
            self._trim(session_id, self._sessions[session_id], now)
        self._evict_over_capacity()
        return changed

    def load_payloads(self, *, product_id: str, session_id: str) -> Sequence[ActionsPayload]:
        session = self._sessions.get(session_id)
        if session is None or not session.entries:
            return []
        actions = [_action(e) for e in session.entries]
        return [
            ActionsPayload(
                product_id=product_id,
                session_id=session_id,
                user_id=session.user_id,
                email=next((a.email for a in reversed(actions) if a.email), None),
                actions=actions,
                count=len(actions),
                forwarded_at=session.last_seen,
            )
        ]

    def latest_action(self, session_id: str) -> Optional[SlimAction]:
        """The session's action with the largest timestamp; of several, the first stored
        (what ``max`` over ``recent_actions`` returns), found without scanning the session."""
        session = self._sessions.get(session_id)
        if session is None or not session.entries:
            return None
        entries = session.entries
        first = bisect.bisect_left(entries, (entries[-1][_TIMESTAMP], -1))
        return _action(entries[first])

    def recent_actions(self, session_id: str) -> List[SlimAction]:
        session = self._sessions.get(session_id)
        return [_action(e) for e in session.entries] if session else []

    def latest_session(self, user_id: str) -> Optional[str]:
        sessions = self._user_sessions.get(user_id)
        if not sessions:
            return None
        if len(sessions) == 1:
            return next(iter(sessions))
        return max(sessions, key=lambda sid: self._sessions[sid].latest_timestamp)

    def latest_sessions(self) -> Iterator[Tuple[str, str]]:
        for user_id in list(self._user_sessions):
            session_id = self.latest_session(user_id)
            if session_id is not None:
                yield user_id, session_id

    def user_of(self, session_id: str) -> Optional[str]:
        session = self._sessions.get(session_id)
        return session.user_id if session else None

    def evict(self, *, now: float) -> int:
        cutoff = now - self._limits.idle_session_s
        evicted = 0
        while self._sessions:
            session_id, session = next(iter(self._sessions.items()))
            if session.last_seen >= cutoff:
                break
            self._drop(session_id)
            evicted += 1
        return evicted

    def session_count(self) -> int:
        return len(self._sessions)

    def revision_of(self, session_id: str) -> int:
        """A number that moves whenever the session's actions, user or ``last_seen`` change
        (0 for a session not stored), so a reader can tell which sessions to copy out again (a
        unit of work writes only those: ``addons.stores.redis.units``)."""
        session = self._sessions.get(session_id)
        return 0 if session is None else session.revision

    # -- moving a user between stores (addons.stores.user_state) ---------------------------

    def user_session_ids(self, user_id: str) -> List[str]:
        """The user's sessions, least recently seen first."""
        sessions = self._user_sessions.get(user_id, ())
        return sorted(sessions, key=lambda sid: (self._sessions[sid].last_seen, sid))

    def export_session(self, session_id: str, *, entries: bool = True) -> Optional[StoredSession]:
        """The session's entries (the event ids seen are theirs: a trimmed action's id goes
        with it); none with ``entries=False`` (who and when only)."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        return StoredSession(user_id=session.user_id, last_seen=session.last_seen,
                             entries=tuple(session.entries) if entries else ())

    def import_session(self, session_id: str, activity: SessionActivity, *, now: float) -> None:
        """Replace the session (whatever this store held for it) with ``activity``: placed
        among the sessions by ``last_seen`` (idle eviction), then trimmed by retention and
        count and the store's session bound applied, as an ingest at ``now`` would.
        Observers are told ``dropped`` for the contents replaced and ``restored`` (not
        ``added``: nothing new happened) for each action moved in."""
        if len({action.index for action, _ in activity.actions}) != len(activity.actions):
            raise ValueError(f"session {session_id!r}: two actions share a sequence number (index)")
        ordered = sorted(activity.actions, key=lambda pair: (pair[0].timestamp_start, pair[0].index))
        entries = [_entry(action, action.index, event_id) for action, event_id in ordered]
        previous = self._sessions.pop(session_id, None)
        if previous is not None:
            for observer in self._observers:
                observer.dropped(session_id)
            if previous.user_id != activity.user_id:
                self._unlink(previous.user_id, session_id)
        session = _Session(user_id=activity.user_id, entries=entries, event_ids=set(activity.event_ids),
                           last_seen=activity.last_seen, revision=self._moved())
        self._insert_by_last_seen(session_id, session)
        self._user_sessions.setdefault(activity.user_id, set()).add(session_id)
        if entries:
            self._seq = max(self._seq, max(e[1] for e in entries))  # later actions sort after these
        for action, _ in ordered:
            for observer in self._observers:
                observer.restored(session_id, action)
        self._trim(session_id, session, now)
        self._evict_over_capacity()

    def remove_session(self, session_id: str) -> bool:
        """Drop a session as eviction does (observers told); False if it was not stored."""
        if session_id not in self._sessions:
            return False
        self._drop(session_id)
        return True

    def _insert_by_last_seen(self, session_id: str, session: _Session) -> None:
        """Append, then move after it the (usually no) sessions seen later: ``evict`` relies on
        the order. O(sessions seen after this one)."""
        self._sessions[session_id] = session
        later: List[str] = []
        for other in reversed(self._sessions):
            if other == session_id:
                continue
            if self._sessions[other].last_seen <= session.last_seen:
                break
            later.append(other)
        for other in reversed(later):
            self._sessions.move_to_end(other)

    def action_count(self) -> int:
        return sum(len(s.entries) for s in self._sessions.values())

    def _session_for(self, tracked: TrackedAction, now: float) -> _Session:
        session = self._sessions.get(tracked.session_id)
        if session is None:
            session = _Session(user_id=tracked.user_id)
            self._sessions[tracked.session_id] = session
            self._user_sessions.setdefault(tracked.user_id, set()).add(tracked.session_id)
        else:
            self._sessions.move_to_end(tracked.session_id)
        session.last_seen = now
        session.revision = self._moved()  # and whatever ``add`` does to it next (rebind, insert, trim)
        return session

    def _moved(self) -> int:
        self._revision += 1
        return self._revision

    def _rebind(self, session_id: str, session: _Session, user_id: str) -> None:
        self._unlink(session.user_id, session_id)
        session.user_id = user_id
        self._user_sessions.setdefault(user_id, set()).add(session_id)

    def _trim(self, session_id: str, session: _Session, now: float) -> None:
        cutoff = now - self._limits.retention_s
        entries = session.entries
        if not entries or (entries[0][_TIMESTAMP] >= cutoff and len(entries) <= self._limits.max_actions_per_session):
            return  # the usual case on ingest: nothing to drop
        start = bisect.bisect_left(entries, (cutoff, -1))
        overflow = len(session.entries) - start - self._limits.max_actions_per_session
        start += max(overflow, 0)
        if start:
            for entry in session.entries[:start]:
                if entry[_EVENT_ID] is not None:
                    session.event_ids.discard(entry[_EVENT_ID])
                for observer in self._observers:
                    observer.removed(session_id, _action(entry))
            del session.entries[:start]

    def _evict_over_capacity(self) -> None:
        while len(self._sessions) > self._limits.max_sessions:
            self._drop(next(iter(self._sessions)))

    def _drop(self, session_id: str) -> None:
        session = self._sessions.pop(session_id)
        for observer in self._observers:
            observer.dropped(session_id)
        self._unlink(session.user_id, session_id)

    def _unlink(self, user_id: str, session_id: str) -> None:
        sessions = self._user_sessions.get(user_id)
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self._user_sessions[user_id]
        for observer in self._observers:
            observer.unlinked(user_id)

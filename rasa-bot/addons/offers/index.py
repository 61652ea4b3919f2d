"""Incremental per-session indexes, so evaluating a session never rescans its history.

``TriggerIndex`` observes the activity store and keeps, for each session and each
``IndexedTrigger``, its *marks*: per matcher of the trigger, the sorted timestamps of the
actions it matches. A verdict is then a few binary searches (``evaluate_marks``) instead of
building a context from every stored action; ``tests/unit/test_index.py`` checks every kind
against the full rescan.
"""

from __future__ import annotations

import bisect
from typing import Dict, List, Sequence, Tuple

from autoplay_sdk.core.models import SlimAction

from addons.offers.triggers import IndexedTrigger, Marks


class TriggerIndex:
    """An ``ActionObserver``: marked timestamps per session, one ``Marks`` per trigger."""

    def __init__(self, triggers: Sequence[IndexedTrigger]) -> None:
        self.triggers = tuple(triggers)
        self._empty: Tuple[Marks, ...] = tuple(tuple([] for _ in range(t.mark_count)) for t in self.triggers)
        self._sessions: Dict[str, List[Marks]] = {}  # only sessions with a marked action

    def marks(self, session_id: str, position: int) -> Marks:
        """The marks of the trigger at ``position`` for a session (empty if it has none)."""
        marks = self._sessions.get(session_id)
        return marks[position] if marks is not None else self._empty[position]

    def added(self, session_id: str, action: SlimAction) -> None:
        for position, trigger in enumerate(self.triggers):
            flags = trigger.classify(action)
            if True in flags:
                marks = self._session(session_id)[position]
                for times, marked in zip(marks, flags):
                    if marked:
                        bisect.insort(times, action.timestamp_start)

    def removed(self, session_id: str, action: SlimAction) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            return
        for position, trigger in enumerate(self.triggers):
            for times, marked in zip(session[position], trigger.classify(action)):
                if marked:
                    _remove_one(times, action.timestamp_start)
        if not any(times for marks in session for times in marks):
            del self._sessions[session_id]

    def dropped(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def unlinked(self, user_id: str) -> None:
        pass  # marks belong to sessions, whoever their user is

    def restored(self, session_id: str, action: SlimAction) -> None:
        self.added(session_id, action)  # an imported action marks like a new one

    def session_count(self) -> int:
        return len(self._sessions)

    def _session(self, session_id: str) -> List[Marks]:
        marks = self._sessions.get(session_id)
        if marks is None:
            marks = self._sessions[session_id] = [tuple([] for _ in range(t.mark_count)) for t in self.triggers]
        return marks


def _remove_one(timestamps: List[float], timestamp: float) -> None:
    position = bisect.bisect_left(timestamps, timestamp)
    if position < len(timestamps) and timestamps[position] == timestamp:
        del timestamps[position]

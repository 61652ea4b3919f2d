"""Incremental per-session indexes, so evaluating a session never rescans its history.

``TriggerIndex`` observes the activity store and keeps, for each session and each
``RepeatedActionTrigger``, the sorted timestamps of the actions that trigger counts (repeats
and "already discovered" hints). A verdict is then a few binary searches
(``RepeatedActionTrigger.evaluate_marks``) instead of building a context from every stored
action; ``tests/unit/test_index.py`` checks it against the full rescan.
"""

from __future__ import annotations

import bisect
from typing import Dict, List, Sequence

from autoplay_sdk.core.models import SlimAction

from addons.offers.triggers import RepeatedActionTrigger, TriggerMarks

_NO_MARKS = TriggerMarks(repeats=[], discovered=[])


class TriggerIndex:
    """An ``ActionObserver``: marked timestamps per session, one ``TriggerMarks`` per trigger."""

    def __init__(self, triggers: Sequence[RepeatedActionTrigger]) -> None:
        self.triggers = tuple(triggers)
        self._sessions: Dict[str, List[TriggerMarks]] = {}  # only sessions with a marked action

    def marks(self, session_id: str, position: int) -> TriggerMarks:
        """The marks of the trigger at ``position`` for a session (empty if it has none)."""
        marks = self._sessions.get(session_id)
        return marks[position] if marks is not None else _NO_MARKS

    def added(self, session_id: str, action: SlimAction) -> None:
        for position, trigger in enumerate(self.triggers):
            repeat, discovered = trigger.classify(action)
            if repeat or discovered:
                marks = self._session(session_id)[position]
                if repeat:
                    bisect.insort(marks.repeats, action.timestamp_start)
                if discovered:
                    bisect.insort(marks.discovered, action.timestamp_start)

    def removed(self, session_id: str, action: SlimAction) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            return
        for position, trigger in enumerate(self.triggers):
            repeat, discovered = trigger.classify(action)
            if repeat:
                _remove_one(session[position].repeats, action.timestamp_start)
            if discovered:
                _remove_one(session[position].discovered, action.timestamp_start)
        if all(not m.repeats and not m.discovered for m in session):
            del self._sessions[session_id]

    def dropped(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def unlinked(self, user_id: str) -> None:
        pass  # marks belong to sessions, whoever their user is

    def session_count(self) -> int:
        return len(self._sessions)

    def _session(self, session_id: str) -> List[TriggerMarks]:
        marks = self._sessions.get(session_id)
        if marks is None:
            marks = self._sessions[session_id] = [TriggerMarks([], []) for _ in self.triggers]
        return marks


def _remove_one(timestamps: List[float], timestamp: float) -> None:
    position = bisect.bisect_left(timestamps, timestamp)
    if position < len(timestamps) and timestamps[position] == timestamp:
        del timestamps[position]

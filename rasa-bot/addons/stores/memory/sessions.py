"""The in-memory ``SessionStateStore``: live autoplay-sdk ``SessionState`` objects."""

from __future__ import annotations

from typing import Dict, Iterator, Optional

from autoplay_sdk.agent_state.v2 import SessionState

from addons.config import SessionTimings


class InMemorySessionStateStore:
    """Live ``SessionState`` objects keyed by session id; ``save`` is a no-op."""

    def __init__(self, timings: SessionTimings) -> None:
        self._timings = timings
        self._states: Dict[str, SessionState] = {}

    def get(self, session_id: str) -> Optional[SessionState]:
        return self._states.get(session_id)

    def peek(self, session_id: str) -> Optional[SessionState]:
        """The state, for a reader that changes nothing (``RevisedSessionStateStore`` keeps
        its revision as it is)."""
        return self._states.get(session_id)

    def get_or_create(self, session_id: str) -> SessionState:
        state = self._states.get(session_id)
        if state is None:
            state = SessionState(
                session_id=session_id,
                interaction_timeout_s=self._timings.interaction_timeout_s,
                cooldown_period_s=self._timings.cooldown_period_s,
            )
            self._states[session_id] = state
        return state

    def save(self, state: SessionState) -> None:
        self._states[state.session_id] = state

    def delete(self, session_id: str) -> None:
        self._states.pop(session_id, None)

    def session_ids(self) -> Iterator[str]:
        return iter(list(self._states))


class RevisedSessionStateStore(InMemorySessionStateStore):
    """The in-memory store, with a revision per session that moves whenever its state may have
    changed, so that a reader can tell which states to copy out again (a unit of work's bundle:
    ``addons.stores.user_state.export_user``). A ``get`` moves it too: it hands out the live
    object, which its caller may change in place. Only the bundles pay for it."""

    def __init__(self, timings: SessionTimings) -> None:
        super().__init__(timings)
        self._revisions: Dict[str, int] = {}
        self._revision = 0  # one counter for all sessions: a revision is never given twice

    def revision_of(self, session_id: str) -> int:
        """0 for a session with no state."""
        return self._revisions.get(session_id, 0)

    def get(self, session_id: str) -> Optional[SessionState]:
        state = super().get(session_id)
        if state is not None:
            self._moved(session_id)
        return state

    def get_or_create(self, session_id: str) -> SessionState:
        self._moved(session_id)
        return super().get_or_create(session_id)

    def save(self, state: SessionState) -> None:
        self._moved(state.session_id)
        super().save(state)

    def delete(self, session_id: str) -> None:
        super().delete(session_id)
        self._revisions.pop(session_id, None)

    def _moved(self, session_id: str) -> None:
        self._revision += 1
        self._revisions[session_id] = self._revision

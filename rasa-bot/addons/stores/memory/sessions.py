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

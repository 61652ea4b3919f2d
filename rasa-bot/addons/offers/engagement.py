"""The user's side of an offer: chat messages, "Open chat" clicks and tours ("Show me").

Each moves the session state by the gate's rules (see ``addons.offers.gate``) and tells the
evaluation strategy, since a changed state changes when the session must be looked at again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from addons.config import ProactiveConfig
from addons.errors import NoActiveTour, UnknownTour, UnknownUser
from addons.offers.evaluation import EvaluationStrategy
from addons.offers.gate import SessionGate
from addons.stores.protocols import ActivityStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TourStart:
    tour_id: str
    flow_id: str
    session_id: str


class Engagement:
    def __init__(self, config: ProactiveConfig, activity: ActivityStore, gate: SessionGate,
                 strategy: EvaluationStrategy) -> None:
        self._config = config
        self._activity = activity
        self._gate = gate
        self._strategy = strategy

    def on_chat_message(self, user_id: str) -> bool:
        """A chat message from the user: their latest session turns reactive."""
        session_id = self._activity.latest_session(user_id)
        if session_id is None:
            return False
        self._gate.on_user_message(session_id)
        self._strategy.watch(session_id)
        return True

    def engage_chat(self, user_id: str, trigger_id: Optional[str]) -> bool:
        """The user clicked "Open chat" on an offer."""
        session_id = self._activity.latest_session(user_id)
        if session_id is None:
            return False
        self._gate.engage(session_id, trigger_id or self._last_trigger(session_id) or "chat")
        self._strategy.watch(session_id)
        return True

    def start_tour(self, user_id: str, tour_id: str) -> TourStart:
        tour = self._config.tour(tour_id)
        if tour is None:
            raise UnknownTour(f"unknown tour {tour_id!r}; known: {[t.id for t in self._config.tours]}")
        session_id = require_session(self._activity, user_id)
        trigger_id = self._last_trigger(session_id) or next(
            (t.id for t in self._config.triggers if tour_id in t.tours), tour_id
        )
        self._gate.start_guidance(session_id, trigger_id, tour_id=tour.id, flow_id=tour.flow_id)
        self._strategy.watch(session_id)
        logger.info(
            "proactive tour started: tour=%s flow=%s user=%s session=%s", tour.id, tour.flow_id, user_id, session_id
        )
        return TourStart(tour_id=tour.id, flow_id=tour.flow_id, session_id=session_id)

    def record_tour_step(self, user_id: str) -> Dict[str, str]:
        return self._tour_event(user_id, self._gate.record_step, "step")

    def end_tour(self, user_id: str) -> Dict[str, str]:
        return self._tour_event(user_id, self._gate.end_guidance, "ended")

    def _tour_event(self, user_id: str, transition: Callable[[str], Optional[Dict[str, str]]], what: str) -> Dict[str, str]:
        """A step or the end of the running tour: the gate's transition, then a new look."""
        session_id = require_session(self._activity, user_id)
        tour = transition(session_id)
        self._strategy.watch(session_id)
        if tour is None:
            raise NoActiveTour(f"no tour is running for user {user_id!r}")
        logger.info("proactive tour %s: tour=%s user=%s", what, tour["tour_id"], user_id)
        return tour

    def _last_trigger(self, session_id: str) -> Optional[str]:
        last = self._gate.last_offer(session_id)
        return last["trigger_id"] if last else None


def require_session(activity: ActivityStore, user_id: str) -> str:
    """The user's latest session, or ``UnknownUser``."""
    session_id = activity.latest_session(user_id)
    if session_id is None:
        raise UnknownUser(f"no activity is tracked for user {user_id!r}")
    return session_id

"""The session-state gate: autoplay-sdk's ``SessionState`` decides when an offer may fire.

Rules (see README "Session-state rules"):

* An offer fires only from THINKING and outside the cooldown; ``transition_to_proactive``
  is never called from another state (it raises there).
* Every pass ticks the state first, so PROACTIVE/REACTIVE time out back to THINKING.
* A chat message: THINKING → REACTIVE; in PROACTIVE/REACTIVE it records the interaction
  (the SDK has no PROACTIVE → REACTIVE edge), so no offer interrupts a conversation.
* A CTA click (Show me / Open chat) on an offer whose state already timed out to THINKING
  re-opens the engagement: the cooldown is cleared and the state re-enters PROACTIVE for
  the offer's trigger, because ``set_visual_guidance`` raises in THINKING and a running tour
  must keep new offers gated. The click is the user asking for help; the cooldown exists to
  stop *us* interrupting, not them.
* An offer consumes its evidence: once an offer of a trigger is shown in a session, the
  actions stamped up to then (at least up to the newest one that made it fire) never count
  for that trigger again; only new matching actions do. The same three saves cannot bring the
  same toast back when the cooldown ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional, Tuple

from autoplay_sdk.agent_state.v2 import AgentStateV2, SessionState
from autoplay_sdk.proactive.triggers.tour_registry import TourRegistry

from addons.config import ProactiveConfig, SessionTimings, TourConfig
from addons.stores.protocols import NOW, SessionStateStore

ACTIVE_TOUR = "active_tour"  # SessionState.metadata key: {"tour_id", "flow_id", "trigger_id"}
LAST_OFFER = "last_offer"  # SessionState.metadata key: {"offer_id", "trigger_id", "at"}
CONSUMED = "consumed"  # SessionState.metadata key: {trigger_id: evidence consumed up to (epoch s)}
CAP_REFUSAL = "cap_refusal"  # SessionState.metadata key: the kind of caps refusal last logged
_NOTHING_CONSUMED: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    reason: str


class SessionGate:
    """All ``SessionState`` transitions the copilot makes, in one place."""

    def __init__(self, store: SessionStateStore, tours: Optional[TourRegistry] = None) -> None:
        self.store = store
        self._tours = tours

    @classmethod
    def for_config(cls, store: SessionStateStore, config: ProactiveConfig) -> "SessionGate":
        """A gate that knows the configured tours' own timeouts and cooldowns."""
        return cls(store, sdk_tour_registry(config))

    @staticmethod
    def clock() -> float:
        """Now, on the clock ``SessionState`` stamps its timers with (monotonic)."""
        return time.monotonic()

    def opens_at(self, session_id: str) -> float:
        """The earliest time (on ``clock()``) the state's ``tick()`` could change it by itself:
        the interaction timeout (per tour, as the SDK resolves it) or the end of the cooldown.
        Any interaction goes through the gate, whose callers ask again."""
        state = self.store.get(session_id)
        if state is None:
            return NOW
        if state.current_state is AgentStateV2.THINKING:
            thinking = state.thinking
            if not thinking.cooldown_active:
                return NOW
            period = thinking.active_cooldown_period_s
            return thinking.cooldown_started_at + (state.cooldown_period_s if period is None else period)
        if state.current_state in (AgentStateV2.PROACTIVE, AgentStateV2.REACTIVE):
            timeout = state.interaction_timeout_s
            if state.active_tour_id is not None and self._tours is not None:
                tour = self._tours.get_by_user_tour_id(state.active_tour_id)
                if tour is not None:
                    timeout = tour.interaction_timeout_s
            return state.last_interaction_at + timeout
        return NOW  # a state this gate does not know: look every tick

    def check(self, session_id: str) -> GateDecision:
        """Could an offer fire now? Ticks first; changes nothing else."""
        state = self._ticked(session_id)
        ok, reason = state.can_deliver_proactive()
        self.store.save(state)
        return GateDecision(ok, reason)

    def try_offer(self, session_id: str, trigger_id: str) -> GateDecision:
        state = self._ticked(session_id)
        if state.current_state is not AgentStateV2.THINKING:
            return GateDecision(False, f"v2_state_{state.current_state.value}")
        if not state.transition_to_proactive(trigger_id):
            return GateDecision(False, "v2_cooldown_active")
        self.store.save(state)
        return GateDecision(True, "ok")

    def record_offer(self, session_id: str, offer_id: str, trigger_id: str, at: float, *, evidence_until: float) -> None:
        """An offer was shown: remember it, and that it consumed its trigger's evidence."""
        state = self.store.get_or_create(session_id)
        state.metadata[LAST_OFFER] = {"offer_id": offer_id, "trigger_id": trigger_id, "at": at}
        state.metadata.pop(CAP_REFUSAL, None)  # an offer got through: the next refusal is news again
        consumed = state.metadata.setdefault(CONSUMED, {})
        consumed[trigger_id] = max(consumed.get(trigger_id, evidence_until), evidence_until)
        self.store.save(state)

    def note_cap_refusal(self, session_id: str, kind: str) -> bool:
        """Whether the caps' refusal ``kind`` is news for the session (it is remembered then,
        until the session's next offer). Kept in the session's state, so it travels with it:
        one log line per session and kind whichever replica runs the session's events."""
        state = self.store.get_or_create(session_id)
        if state.metadata.get(CAP_REFUSAL) == kind:
            return False
        state.metadata[CAP_REFUSAL] = kind
        self.store.save(state)
        return True

    def consumed(self, session_id: str) -> Mapping[str, float]:
        """Per trigger, the time up to which shown offers consumed the session's evidence."""
        state = self.store.get(session_id)
        return state.metadata.get(CONSUMED, _NOTHING_CONSUMED) if state else _NOTHING_CONSUMED

    def last_offer(self, session_id: str) -> Optional[Dict[str, Any]]:
        state = self.store.get(session_id)
        return state.metadata.get(LAST_OFFER) if state else None

    def on_user_message(self, session_id: str) -> None:
        state = self._ticked(session_id)
        if state.current_state is AgentStateV2.THINKING:
            state.transition_to_reactive()
        else:
            state.record_user_interaction()
        self.store.save(state)

    def engage(self, session_id: str, trigger_id: str) -> None:
        """A CTA click on an offer: keep (or re-open) PROACTIVE, see the module rules."""
        state = self._engaged(session_id, trigger_id)
        state.record_option_click()
        self.store.save(state)

    def start_guidance(self, session_id: str, trigger_id: str, *, tour_id: str, flow_id: str) -> None:
        state = self._engaged(session_id, trigger_id)
        # The SDK looks per-tour timeouts up by the provider flow id, not our tour id.
        state.set_visual_guidance(True, tour_id=flow_id)
        state.metadata[ACTIVE_TOUR] = {"tour_id": tour_id, "flow_id": flow_id, "trigger_id": trigger_id}
        self.store.save(state)

    def record_step(self, session_id: str) -> Optional[Dict[str, str]]:
        """A tour step; returns the active tour, or None when no tour is running."""
        state = self._ticked(session_id)
        tour = state.metadata.get(ACTIVE_TOUR)
        if tour is None:
            return None
        if state.current_state is AgentStateV2.THINKING:
            # The user paused past the timeout mid-tour; stepping on resumes the guidance.
            state = self._engaged(session_id, tour["trigger_id"])
            state.set_visual_guidance(True, tour_id=tour["flow_id"])
        state.record_tour_step()
        self.store.save(state)
        return dict(tour)

    def end_guidance(self, session_id: str) -> Optional[Dict[str, str]]:
        state = self._ticked(session_id)
        tour = state.metadata.pop(ACTIVE_TOUR, None)
        if state.current_state is not AgentStateV2.THINKING:
            state.set_visual_guidance(False)
            state.record_any_interaction()
        self.store.save(state)
        return None if tour is None else dict(tour)

    def snapshot(self, session_id: str) -> Dict[str, Any]:
        state = self._ticked(session_id)
        self.store.save(state)
        now = self.clock()
        thinking = state.thinking
        cooldown_left = 0.0
        if thinking.cooldown_active and thinking.cooldown_started_at is not None:
            period = thinking.active_cooldown_period_s or state.cooldown_period_s
            cooldown_left = max(0.0, period - (now - thinking.cooldown_started_at))
        return {
            "state": state.current_state.value,
            "cooldown_active": thinking.cooldown_active,
            "cooldown_remaining_s": round(cooldown_left, 1),
            "seconds_since_interaction": round(now - state.last_interaction_at, 1),
            "interaction_timeout_s": state.interaction_timeout_s,
            "cooldown_period_s": state.cooldown_period_s,
            "visual_guidance_active": state.visual_guidance_active,
            "active_tour": state.metadata.get(ACTIVE_TOUR),
        }

    def forget(self, session_id: str) -> None:
        self.store.delete(session_id)

    def _ticked(self, session_id: str) -> SessionState:
        state = self.store.get_or_create(session_id)
        state.tick(tour_registry=self._tours)
        return state

    def _engaged(self, session_id: str, trigger_id: str) -> SessionState:
        state = self._ticked(session_id)
        if state.current_state is AgentStateV2.THINKING:
            state.thinking.clear_cooldown()
            state.transition_to_proactive(trigger_id)
        return state


def sdk_tour_registry(config: ProactiveConfig) -> TourRegistry:
    """proactive.yml's tours as autoplay-sdk's registry (keyed by the renderer's flow id,
    which is how ``SessionState`` looks up a running tour's timeout). One registry per set of
    tours, shared by the gates that only read it: a replica on Redis makes a gate for every
    user it loads."""
    return _tour_registry(config.product_id, config.session, config.tours)


@lru_cache(maxsize=16)
def _tour_registry(product_id: str, session: SessionTimings, tours: Tuple[TourConfig, ...]) -> TourRegistry:
    return TourRegistry.from_dict(
        {
            "product_id": product_id,
            "default_interaction_timeout_s": session.interaction_timeout_s,
            "default_cooldown_period_s": session.cooldown_period_s,
            "tours": [
                {
                    "id": t.id,
                    "user_tour_id": t.flow_id,
                    "user_tour_name": t.label,
                    "interaction_timeout_s": t.interaction_timeout_s,
                    "cooldown_period_s": t.cooldown_period_s,
                }
                for t in tours
            ],
        }
    )

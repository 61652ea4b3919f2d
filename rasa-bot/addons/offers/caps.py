"""Frequency caps across sessions: how often one user may see an offer at all.

The session gate keeps one conversation polite (one offer per engagement, then a
cooldown); these caps keep the product polite (a new session, a second tab or a quick
return must not mean a new toast). An offer counts once it is delivered to a toast stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from addons.config import OfferCapsConfig
from addons.stores.protocols import DAY_S, OfferHistoryStore

logger = logging.getLogger(__name__)

HOUR_S = 3600.0


@dataclass(frozen=True)
class CapDecision:
    allowed: bool
    reason: str
    opens_at: float = 0.0  # when a refused offer could next pass (epoch seconds)

    @property
    def kind(self) -> str:
        """The refusal's kind: "daily cap", "hourly cap" or "minimum gap"."""
        return self.reason.split(":", 1)[0]


# Checked on every evaluation: the common answer allocates nothing (short-lived objects on
# the hot path drive the garbage collector into full collections, see BENCHMARKS.md).
ALLOWED = CapDecision(True, "ok")


class OfferCaps:
    """The cap policy over the store of delivered offers."""

    def __init__(self, config: OfferCapsConfig, history: OfferHistoryStore) -> None:
        self.config = config
        self.history = history

    def check(self, user_id: str, session_id: str, now: float) -> CapDecision:
        c = self.config
        history = self.history.delivered(user_id, now)
        if history is None:
            return ALLOWED
        times, sessions = history.times, history.sessions
        if len(times) >= c.per_user_per_day:
            return CapDecision(
                False, f"daily cap: {len(times)} of {c.per_user_per_day} offers to this user in the last 24 h",
                times[len(times) - c.per_user_per_day] + DAY_S,
            )
        in_session = 0
        for at, session in zip(times, sessions):
            in_session += session == session_id and now - at < HOUR_S
        if in_session >= c.per_session_per_hour:
            hour = [at for at, session in zip(times, sessions) if session == session_id and now - at < HOUR_S]
            return CapDecision(
                False, f"hourly cap: {in_session} of {c.per_session_per_hour} offers in this session in the last hour",
                hour[in_session - c.per_session_per_hour] + HOUR_S,
            )
        if now - times[-1] < c.min_gap_s:
            return CapDecision(
                False, f"minimum gap: the last offer was {now - times[-1]:.0f} s ago, less than {c.min_gap_s:g} s",
                times[-1] + c.min_gap_s,
            )
        return ALLOWED

    def record(self, user_id: str, session_id: str, at: float) -> None:
        self.history.record(user_id, session_id, at)

    def log_refusal(self, trigger_id: str, user_id: str, session_id: str, reason: str) -> None:
        """Once per session and kind of refusal (``SessionGate.note_cap_refusal``), not once per
        event while the cap holds."""
        logger.info("proactive offer suppressed: trigger=%s user=%s session=%s reason=%s", trigger_id, user_id, session_id, reason)

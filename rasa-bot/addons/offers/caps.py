"""Frequency caps across sessions: how often one user may see an offer at all.

The session gate keeps one conversation polite (one offer per engagement, then a
cooldown); these caps keep the product polite (a new session, a second tab or a quick
return must not mean a new toast). An offer counts once it is delivered to a toast stream.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional

from addons.bounded import BoundedMap
from addons.config import OfferCapsConfig

DAY_S = 86400.0
HOUR_S = 3600.0


@dataclass(frozen=True)
class CapDecision:
    allowed: bool
    reason: str
    opens_at: float = 0.0  # when a refused offer could next pass (epoch seconds)


# Checked on every evaluation: the common answer allocates nothing (short-lived objects on
# the hot path drive the garbage collector into full collections, see BENCHMARKS.md).
ALLOWED = CapDecision(True, "ok")


class _History:
    """A user's delivered offers, oldest first: times and sessions side by side (plain floats
    and strings, no tuple per offer for the collector to track)."""

    __slots__ = ("times", "sessions")

    def __init__(self) -> None:
        self.times: Deque[float] = deque()
        self.sessions: Deque[str] = deque()


class OfferCaps:
    """Delivered offers per user over the last day; bounded to ``max_users`` users."""

    def __init__(self, config: OfferCapsConfig, *, max_users: int = 200_000) -> None:
        self.config = config
        self.max_users = max_users
        self._delivered: BoundedMap[str, _History] = BoundedMap(max_users)

    def check(self, user_id: str, session_id: str, now: float) -> CapDecision:
        c = self.config
        history = self._recent(user_id, now)
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
        history = self._recent(user_id, at)
        if history is None:
            history = _History()
        history.times.append(at)
        history.sessions.append(session_id)
        self._delivered.touch(user_id, history)

    def user_count(self) -> int:
        return len(self._delivered)

    def _recent(self, user_id: str, now: float) -> Optional[_History]:
        """The user's history within the last day (older entries dropped), None if empty."""
        history = self._delivered.get(user_id)
        if history is None:
            return None
        while history.times and now - history.times[0] >= DAY_S:
            history.times.popleft()
            history.sessions.popleft()
        if not history.times:
            del self._delivered[user_id]
            return None
        return history

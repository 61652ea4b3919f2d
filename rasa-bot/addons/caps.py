"""Frequency caps across sessions: how often one user may see an offer at all.

The session gate keeps one conversation polite (one offer per engagement, then a
cooldown); these caps keep the product polite (a new session, a second tab or a quick
return must not mean a new toast). An offer counts once it is delivered to a toast stream.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Deque, Tuple

from addons.config import OfferCapsConfig

DAY_S = 86400.0
HOUR_S = 3600.0


@dataclass(frozen=True)
class CapDecision:
    allowed: bool
    reason: str
    opens_at: float = 0.0  # when a refused offer could next pass (epoch seconds)


class OfferCaps:
    """Delivered offers per user over the last day; bounded to ``max_users`` users."""

    def __init__(self, config: OfferCapsConfig, *, max_users: int = 200_000) -> None:
        self.config = config
        self.max_users = max_users
        self._delivered: "OrderedDict[str, Deque[Tuple[float, str]]]" = OrderedDict()  # user → (at, session)

    def check(self, user_id: str, session_id: str, now: float) -> CapDecision:
        c = self.config
        history = self._recent(user_id, now)
        if len(history) >= c.per_user_per_day:
            opens_at = history[len(history) - c.per_user_per_day][0] + DAY_S
            return CapDecision(
                False, f"daily cap: {len(history)} of {c.per_user_per_day} offers to this user in the last 24 h", opens_at
            )
        in_session = [at for at, session in history if session == session_id and now - at < HOUR_S]
        if len(in_session) >= c.per_session_per_hour:
            opens_at = in_session[len(in_session) - c.per_session_per_hour] + HOUR_S
            return CapDecision(
                False, f"hourly cap: {len(in_session)} of {c.per_session_per_hour} offers in this session in the last hour",
                opens_at,
            )
        if history and now - history[-1][0] < c.min_gap_s:
            return CapDecision(
                False, f"minimum gap: the last offer was {now - history[-1][0]:.0f} s ago, less than {c.min_gap_s:g} s",
                history[-1][0] + c.min_gap_s,
            )
        return CapDecision(True, "ok")

    def record(self, user_id: str, session_id: str, at: float) -> None:
        history = self._recent(user_id, at)
        history.append((at, session_id))
        self._delivered[user_id] = history
        self._delivered.move_to_end(user_id)
        while len(self._delivered) > self.max_users:
            self._delivered.popitem(last=False)

    def forget(self, user_id: str) -> None:
        self._delivered.pop(user_id, None)

    def user_count(self) -> int:
        return len(self._delivered)

    def _recent(self, user_id: str, now: float) -> Deque[Tuple[float, str]]:
        history = self._delivered.get(user_id)
        if history is None:
            return deque()
        while history and now - history[0][0] >= DAY_S:
            history.popleft()
        if not history:
            del self._delivered[user_id]
        return history

"""One offer's life as the insights keep it, and the words for its stages.

Every stage is counted once per offer, in the offer's *cohort day* (the UTC day it fired):
an offer fired at 23:59 and adopted at 00:05 counts both in the same day, so a day's
funnel never shows more adoptions than offers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, Optional, Set

# The funnel, in order. `held_out` and `delivered` are the two ways a fired offer is
# decided at delivery time; `expired` is a pending offer no tab opened for.
STAGES = (
    "fired", "held_out", "delivered", "expired", "shown",
    "show_me", "open_chat", "dismissed",
    "tour_completed", "tour_abandoned",
    "follow_up", "replied", "adopted",
)
OUTCOMES = ("show_me", "open_chat", "dismissed")  # what the user did with a shown toast; one per offer
DISMISS_REASONS = ("close", "escape", "timeout", "navigated")
TOUR_END_REASONS = ("closed", "element_missing", "navigated")
FOLLOW_UP_SOURCES = ("model", "fallback")
# Adoption groups: offers shown (delivered), offers held out, and no offer at all (baseline).
SHOWN, HELD_OUT, BASELINE = "shown", "held_out", "baseline"
MAX_TOUR_STEP = 50  # a label value per step: bounded, whatever a browser reports


@dataclass
class OfferRecord:
    """What is known of one offer after it fired."""

    offer_id: str
    user_id: str
    session_id: str
    trigger_id: str
    fired_at: float  # server wall clock (epoch seconds): the request that completed the evidence
    group: Optional[str] = None  # SHOWN or HELD_OUT, decided at delivery
    stages: Set[str] = field(default_factory=set)  # reached so far (each counts once)
    open_chat_at: Optional[float] = None  # when "Open chat" was reported, for click → first bubble

    @property
    def day(self) -> str:
        return day_of(self.fired_at)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON types (stages sorted), for a store; ``from_dict`` reads it back."""
        return {
            "offer_id": self.offer_id,
            "user_id": self.user_id,
            "session_id": self.session_id,
            "trigger_id": self.trigger_id,
            "fired_at": self.fired_at,
            "group": self.group,
            "stages": sorted(self.stages),
            "open_chat_at": self.open_chat_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OfferRecord":
        group, open_chat_at = data.get("group"), data.get("open_chat_at")
        return cls(
            offer_id=str(data["offer_id"]),
            user_id=str(data["user_id"]),
            session_id=str(data["session_id"]),
            trigger_id=str(data["trigger_id"]),
            fired_at=float(data["fired_at"]),
            group=None if group is None else str(group),
            stages={str(stage) for stage in data.get("stages", ())},
            open_chat_at=None if open_chat_at is None else float(open_chat_at),
        )


def day_of(at: float) -> str:
    """The UTC day (YYYY-MM-DD) of an epoch time: the unit the funnel's periods are made of."""
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%d")

"""An offer, as the toast receives it and as stores keep it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

# A toast stream's events carry their offer's id, which EventSource sends back as
# ``Last-Event-ID`` when it reconnects. A stream opened without one is first given a cursor id,
# so that one which dies before its first offer also comes back with a place to replay from.
CURSOR_PREFIX = "since-"
# A delivered offer is stamped with its unit of work's time, which can come before it reaches
# the streams by the unit's wait (up to the units' call deadline) and the replicas' clock skew:
# the cursor reaches back that far. The page drops offers it has shown already.
CURSOR_MARGIN_S = 6.0
_CURSOR_DIGITS = re.compile(r"[0-9]{1,16}")


def stream_cursor(opened_at: float) -> str:
    """The event id that stands for "every offer delivered since a stream opened at
    ``opened_at``" (epoch seconds), from ``CURSOR_MARGIN_S`` before."""
    return since_cursor(opened_at - CURSOR_MARGIN_S)


def since_cursor(at: float) -> str:
    """The cursor for "every offer delivered since ``at``" (epoch seconds), in milliseconds."""
    return f"{CURSOR_PREFIX}{int(at * 1000)}"


def cursor_time(last_event_id: str) -> Optional[float]:
    """Since when the cursor replays; None for an offer's id (or anything else, whatever a
    client put in its ``Last-Event-ID``)."""
    if not last_event_id.startswith(CURSOR_PREFIX):
        return None
    digits = last_event_id[len(CURSOR_PREFIX):]
    return int(digits) / 1000 if _CURSOR_DIGITS.fullmatch(digits) else None


@dataclass(frozen=True)
class TourOffer:
    id: str
    flow_id: str
    label: str

    def to_dict(self) -> Dict[str, str]:
        return {"id": self.id, "flow_id": self.flow_id, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TourOffer":
        return cls(id=str(data["id"]), flow_id=str(data["flow_id"]), label=str(data["label"]))


@dataclass(frozen=True)
class Offer:
    """One proactive offer: the trigger that fired, its toast text and the tours on screen."""

    offer_id: str
    user_id: str
    session_id: str
    trigger_id: str
    body: str
    tours: Tuple[TourOffer, ...]
    created_at: float
    evidence_until: float = 0.0  # the trigger's evidence it consumes once shown; server-side only

    def to_dict(self) -> Dict[str, Any]:
        """What the browser receives (no ``evidence_until``)."""
        data = self.to_stored_dict()
        del data["evidence_until"]
        return data

    def to_stored_dict(self) -> Dict[str, Any]:
        """Every field, as plain JSON types: what a store keeps (``from_dict`` reads it back).
        Written out, not ``dataclasses.asdict``, which deep-copies and is many times slower: a
        user's offers are written on every unit of work (docs/design/cluster.md)."""
        return {
            "offer_id": self.offer_id,
            "user_id": self.user_id,
            "session_id": self.session_id,
            "trigger_id": self.trigger_id,
            "body": self.body,
            "tours": [t.to_dict() for t in self.tours],
            "created_at": self.created_at,
            "evidence_until": self.evidence_until,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Offer":
        """The offer of ``to_stored_dict`` (or of ``to_dict``, whose ``evidence_until`` is 0)."""
        return cls(
            offer_id=str(data["offer_id"]),
            user_id=str(data["user_id"]),
            session_id=str(data["session_id"]),
            trigger_id=str(data["trigger_id"]),
            body=str(data["body"]),
            tours=tuple(TourOffer.from_dict(t) for t in data["tours"]),
            created_at=float(data["created_at"]),
            evidence_until=float(data.get("evidence_until", 0.0)),
        )

"""An offer, as the toast receives it and as stores keep it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Tuple


@dataclass(frozen=True)
class TourOffer:
    id: str
    flow_id: str
    label: str


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
        data = asdict(self)
        del data["evidence_until"]
        data["tours"] = [asdict(t) for t in self.tours]
        return data

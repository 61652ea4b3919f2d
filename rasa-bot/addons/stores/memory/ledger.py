"""The in-memory offer ledger: recent offers' records and daily counts, both bounded."""

from __future__ import annotations

from collections import Counter
from typing import Dict, Optional, Tuple

from addons.bounded import BoundedMap
from addons.insights.records import OfferRecord


class InMemoryOfferLedger:
    """At most ``max_offers`` records (the oldest go first) and the counts of the newest
    ``retention_days`` days that have any."""

    def __init__(self, *, max_offers: int = 100_000, retention_days: int = 90) -> None:
        self._records: BoundedMap[str, OfferRecord] = BoundedMap(max_offers)
        self._latest: BoundedMap[Tuple[str, str], str] = BoundedMap(max_offers)
        self._baselines: BoundedMap[Tuple[str, str], float] = BoundedMap(max_offers)
        self._days: Dict[str, Dict[str, Counter[str]]] = {}
        self._retention_days = retention_days

    def add(self, record: OfferRecord) -> None:
        self._records.touch(record.offer_id, record)
        self._latest.touch((record.user_id, record.trigger_id), record.offer_id)

    def get(self, offer_id: str) -> Optional[OfferRecord]:
        return self._records.get(offer_id)

    def save(self, record: OfferRecord) -> None:
        if record.offer_id in self._records:  # live objects: nothing to write; an evicted one stays gone
            self._records[record.offer_id] = record

    def latest(self, user_id: str, trigger_id: str) -> Optional[OfferRecord]:
        offer_id = self._latest.get((user_id, trigger_id))
        return None if offer_id is None else self._records.get(offer_id)

    def increment(self, day: str, trigger_id: str, key: str, amount: int = 1) -> None:
        if day not in self._days:
            self._days[day] = {}
            self._forget_old_days()
            if day not in self._days:
                return  # older than everything kept
        self._days[day].setdefault(trigger_id, Counter())[key] += amount

    def totals(self, first_day: str, last_day: str) -> Dict[str, Dict[str, int]]:
        totals: Dict[str, Counter[str]] = {}
        for day, triggers in self._days.items():
            if first_day <= day <= last_day:  # ISO dates compare as strings
                for trigger_id, counts in triggers.items():
                    totals.setdefault(trigger_id, Counter()).update(counts)
        return {trigger_id: dict(counts) for trigger_id, counts in totals.items()}

    def baseline_at(self, user_id: str, trigger_id: str) -> Optional[float]:
        return self._baselines.get((user_id, trigger_id))

    def note_baseline(self, user_id: str, trigger_id: str, at: float) -> None:
        self._baselines.touch((user_id, trigger_id), at)

    def _forget_old_days(self) -> None:
        for day in sorted(self._days)[:-self._retention_days]:
            del self._days[day]

"""The in-memory offer ledger: recent offers' records and daily counts, both bounded."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

from addons.bounded import BoundedMap
from addons.insights.records import OfferRecord


@dataclass(frozen=True)
class UserLedger:
    """One user's part of an ``InMemoryOfferLedger``, as ``export_user`` gives it and
    ``import_user`` takes it (``addons.stores.user_state``). The daily counts are nobody's
    in particular and are not part of it."""

    records: Tuple[OfferRecord, ...]  # oldest first
    latest: Mapping[str, str]  # trigger id → the offer id ``latest`` answers
    baselines: Mapping[str, float]  # trigger id → ``baseline_at``


class InMemoryOfferLedger:
    """At most ``max_offers`` records (the oldest go first) and the counts of the newest
    ``retention_days`` days that have any."""

    def __init__(self, *, max_offers: int = 100_000, retention_days: int = 90) -> None:
        self._records: BoundedMap[str, OfferRecord] = BoundedMap(max_offers, on_evict=self._record_evicted)
        self._latest: BoundedMap[Tuple[str, str], str] = BoundedMap(max_offers)
        self._baselines: BoundedMap[Tuple[str, str], float] = BoundedMap(max_offers, on_evict=self._baseline_evicted)
        # Per user, so one user's part is found without a scan: their records' ids (oldest
        # first, a dict for its order) with the revision each was last written at, and the
        # triggers they have a baseline for.
        self._user_records: Dict[str, Dict[str, int]] = {}
        self._user_baselines: Dict[str, Set[str]] = {}
        self._days: Dict[str, Dict[str, Counter[str]]] = {}
        self._retention_days = retention_days
        self._revision = 0

    @property
    def revision(self) -> int:
        """Changes with every write to the records or baselines (the daily counts aside): while
        it stands still, so does what ``export_user`` gives. A record changed in place is
        saved, as for any store."""
        return self._revision

    def add(self, record: OfferRecord) -> None:
        self._revision += 1
        self._unindex_record(record.offer_id)  # an id added again moves to the end
        self._records.touch(record.offer_id, record)
        if record.offer_id in self._records:
            self._user_records.setdefault(record.user_id, {})[record.offer_id] = self._revision
        self._latest.touch((record.user_id, record.trigger_id), record.offer_id)

    def get(self, offer_id: str) -> Optional[OfferRecord]:
        return self._records.get(offer_id)

    def save(self, record: OfferRecord) -> None:
        if record.offer_id in self._records:  # live objects: nothing to write; an evicted one stays gone
            self._records[record.offer_id] = record
            self._revision += 1
            self._user_records[record.user_id][record.offer_id] = self._revision

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

    def drain_counts(self) -> Dict[Tuple[str, str, str], int]:
        """Every count kept, as (day, trigger id, key) → count, and none kept after: what a
        unit of work's ledger added since the last drain, for its commit to add to the
        shared counts."""
        counts = {
            (day, trigger_id, key): count
            for day, triggers in self._days.items() for trigger_id, counts in triggers.items() for key, count in counts.items()
        }
        self._days.clear()
        return counts

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
        self._revision += 1
        if (user_id, trigger_id) in self._baselines:
            self._user_baselines.setdefault(user_id, set()).add(trigger_id)

    # -- moving a user between stores (addons.stores.user_state) ---------------------------

    def export_user(self, user_id: str) -> UserLedger:
        """Copies of the user's records, what ``latest`` answers for them, their baselines."""
        records = tuple(replace(record, stages=set(record.stages)) for record, _ in self.written(user_id))
        return UserLedger(records=records, latest=self.latest_of(user_id, records), baselines=self.baselines_of(user_id))

    def written(self, user_id: str) -> List[Tuple[OfferRecord, int]]:
        """The user's records, oldest first, each with the ledger's ``revision`` when it was
        last written (``add``, ``save``): the live objects, for a reader that changes nothing
        and copies out only what was written since it last did (``addons.stores.user_state``)."""
        return [(self._records[offer_id], written) for offer_id, written in self._user_records.get(user_id, {}).items()]

    def latest_of(self, user_id: str, records: Sequence[OfferRecord]) -> Dict[str, str]:
        """What ``latest`` answers for the triggers of ``records``, the user's: trigger id → offer id."""
        latest: Dict[str, str] = {}
        for record in records:
            offer_id = self._latest.get((user_id, record.trigger_id))
            if offer_id is not None and offer_id in self._records:
                latest[record.trigger_id] = offer_id
        return latest

    def baselines_of(self, user_id: str) -> Dict[str, float]:
        return {t: self._baselines[(user_id, t)] for t in sorted(self._user_baselines.get(user_id, ()))}

    def import_user(self, user_id: str, ledger: UserLedger) -> None:
        """Replace the user's records, latest offers and baselines with ``ledger`` (the
        records become the most recently added; the bound applies)."""
        self._revision += 1
        for offer_id in list(self._user_records.get(user_id, ())):
            record = self._records.pop(offer_id)
            self._latest.pop((user_id, record.trigger_id), None)
            self._unindex_record(offer_id, record)
        for trigger_id in self._user_baselines.pop(user_id, set()):
            self._baselines.pop((user_id, trigger_id), None)
        for record in ledger.records:
            if record.user_id != user_id:
                raise ValueError(f"offer record {record.offer_id!r} is not user {user_id!r}'s")
            self.add(replace(record, stages=set(record.stages)))
        for record in ledger.records:  # ``add`` made the last of each trigger the latest
            self._latest.pop((user_id, record.trigger_id), None)
        for trigger_id, offer_id in ledger.latest.items():
            if offer_id in self._records:
                self._latest.touch((user_id, trigger_id), offer_id)
        for trigger_id, at in ledger.baselines.items():
            self.note_baseline(user_id, trigger_id, at)

    def _record_evicted(self, offer_id: str, record: OfferRecord) -> None:
        self._unindex_record(offer_id, record)

    def _unindex_record(self, offer_id: str, record: Optional[OfferRecord] = None) -> None:
        record = record or self._records.get(offer_id)
        if record is None:
            return
        offers = self._user_records.get(record.user_id)
        if offers is not None:
            offers.pop(offer_id, None)
            if not offers:
                del self._user_records[record.user_id]

    def _baseline_evicted(self, key: Tuple[str, str], at: float) -> None:
        user_id, trigger_id = key
        triggers = self._user_baselines.get(user_id)
        if triggers is not None:
            triggers.discard(trigger_id)
            if not triggers:
                del self._user_baselines[user_id]

    def _forget_old_days(self) -> None:
        for day in sorted(self._days)[:-self._retention_days]:
            del self._days[day]

"""The one place an offer's life is written down: each stage once per offer, into the
ledger's daily counts (the funnel JSON) and the ``OfferCounters`` (Prometheus) together.

The engine reports what the server decides (fired, held out, delivered, expired), the
browser what only it knows (shown, the outcome, tour steps and ends), the chat side the
follow-up and the reply, and ``AdoptionWatcher`` the adoptions it sees in new activity.
"""

from __future__ import annotations

import logging
from typing import Optional, Tuple

from autoplay_sdk.core.models import SlimAction

from addons.config import ProactiveConfig
from addons.errors import ProactiveError
from addons.insights.holdout import Holdout
from addons.insights.metrics import LATENCY_BUCKETS, OfferCounters, OfferMetrics
from addons.insights.records import (
    BASELINE, DISMISS_REASONS, FOLLOW_UP_SOURCES, HELD_OUT, MAX_TOUR_STEP, OUTCOMES, SHOWN, TOUR_END_REASONS,
    OfferRecord, day_of,
)
from addons.offers.offer import Offer
from addons.offers.triggers.base import ActionMatcher
from addons.stores.protocols import OfferLedgerStore

logger = logging.getLogger(__name__)

BROWSER_EVENTS = ("shown",) + OUTCOMES


class UnknownOffer(ProactiveError, LookupError):
    """No offer with this id was made to this user (or it is too old to be followed)."""

    status = 404


class BadOfferEvent(ProactiveError, ValueError):
    """A report names an event, reason or step the insights do not know."""


class OfferJournal:
    def __init__(self, config: ProactiveConfig, ledger: OfferLedgerStore, counters: Optional[OfferCounters] = None) -> None:
        self._config = config
        self._ledger = ledger
        self.counters: OfferCounters = counters or OfferMetrics(t.id for t in config.triggers)
        self._holdout = Holdout(config.insights.holdout_seed)

    # -- the server's side -----------------------------------------------------------------

    def holds_out(self, offer: Offer) -> bool:
        """Whether this user is in the trigger's holdout: the offer is recorded, never shown."""
        trigger = self._config.trigger(offer.trigger_id)
        return trigger is not None and self._holdout.holds_out(offer.trigger_id, offer.user_id, trigger.holdout_pct)

    def fired(self, offer: Offer) -> None:
        record = OfferRecord(offer.offer_id, offer.user_id, offer.session_id, offer.trigger_id, offer.created_at)
        self._ledger.add(record)
        self._reach(record, "fired")

    def decided(self, offer: Offer, *, shown: bool) -> None:
        """Delivered to the user's streams, or held out: the offer's group for the lift."""
        record = self._ledger.get(offer.offer_id)
        if record is None or record.group is not None:
            return
        record.group = SHOWN if shown else HELD_OUT
        self._reach(record, "delivered" if shown else "held_out")

    def expired(self, offer: Offer) -> None:
        """Never delivered: no tab opened while it waited, or it was no longer allowed when one did."""
        record = self._ledger.get(offer.offer_id)
        if record is not None and record.group is None:
            self._reach(record, "expired")

    def never_shown(self, offer_id: str) -> bool:
        """Delivered to the user's streams, and no browser reported it shown or acted on it."""
        record = self._ledger.get(offer_id)
        return record is not None and record.group == SHOWN and not record.stages & set(BROWSER_EVENTS)

    # -- the browser's side ---------------------------------------------------------------

    def report(self, user_id: str, offer_id: str, event: str, reason: Optional[str], *, now: float) -> bool:
        """``shown`` or an outcome, as the toast reports it. Returns whether it was new."""
        if event not in BROWSER_EVENTS:
            raise BadOfferEvent(f"event must be one of {list(BROWSER_EVENTS)}, got {event!r:.40}")
        if event == "dismissed" and reason not in DISMISS_REASONS:
            raise BadOfferEvent(f"a dismissal needs a reason, one of {list(DISMISS_REASONS)}; got {reason!r:.40}")
        record = self._record(user_id, offer_id)
        if event == "shown":
            if not self._reach(record, "shown"):
                return False
            self.counters.event_to_toast(record.trigger_id, now - record.fired_at)
            self._observe(record, "event_to_toast", now - record.fired_at)
            return True
        return self._outcome(record, event, reason if event == "dismissed" else None, now)

    def tour_step(self, user_id: str, offer_id: str, step: object) -> bool:
        record = self._record(user_id, offer_id)
        number = step_number(step)
        self._outcome(record, "show_me", None, None)
        if not self._reach(record, f"tour_step:{number}", count_stage=False):
            return False
        self.counters.tour_step(record.trigger_id, number)
        return True

    def tour_ended(self, user_id: str, offer_id: str, outcome: object, reason: object, step: object) -> bool:
        outcome, reason, number = tour_end(outcome, reason, step)
        record = self._record(user_id, offer_id)
        self._outcome(record, "show_me", None, None)
        if record.stages & {"tour_completed", "tour_abandoned"}:
            return False
        if outcome == "completed":
            return self._reach(record, "tour_completed")
        self._reach(record, "tour_abandoned", f"tour_abandoned:{reason}", f"abandoned_at_step:{number}")
        self.counters.tour_abandoned(record.trigger_id, str(reason), number)
        return True

    # -- the chat's side --------------------------------------------------------------------

    def first_bubble(self, user_id: str, offer_id: str, *, clicked_at: float, now: float) -> None:
        """The question bubble was sent; ``clicked_at`` is when the inject request came, used
        when the browser's Open chat report never arrived."""
        record = self._record(user_id, offer_id)
        self._outcome(record, "open_chat", None, clicked_at)
        if self._reach(record, "first_bubble", count_stage=False):
            latency = max(0.0, now - (record.open_chat_at or clicked_at))
            self.counters.click_to_first_bubble(record.trigger_id, latency)
            self._observe(record, "click_to_first_bubble", latency)

    def follow_up(self, user_id: str, offer_id: str, source: str) -> None:
        if source not in FOLLOW_UP_SOURCES:
            raise ValueError(f"follow-up source must be one of {FOLLOW_UP_SOURCES}, got {source!r}")
        record = self._record(user_id, offer_id)
        if self._reach(record, "follow_up", f"follow_up:{source}"):
            self.counters.follow_up(record.trigger_id, source)

    def replied(self, user_id: str) -> None:
        """The user wrote in the chat: a reply to the latest offer they opened the chat on."""
        opened = [
            record for record in (self._ledger.latest(user_id, t.id) for t in self._config.triggers)
            if record is not None and "open_chat" in record.stages and "replied" not in record.stages
        ]
        if opened:
            self._reach(max(opened, key=lambda r: r.fired_at), "replied")

    # -- adoption ---------------------------------------------------------------------------

    def adopted(self, user_id: str, trigger_id: str, at: float, within_s: float) -> str:
        """The user took the faster way at ``at``: credited to their offer of the trigger made
        within ``within_s`` before (once per offer), or else to the baseline (once per spell
        of ``within_s``). Returns the group credited, or "" when nothing new was counted."""
        record = self._ledger.latest(user_id, trigger_id)
        if record is not None and record.group is not None and record.fired_at <= at <= record.fired_at + within_s:
            if not self._reach(record, "adopted", f"adopted:{record.group}"):
                return ""
            self.counters.adoption(trigger_id, record.group)
            return record.group
        last = self._ledger.baseline_at(user_id, trigger_id)
        if last is not None and abs(at - last) < within_s:
            return ""
        self._ledger.note_baseline(user_id, trigger_id, at)
        self._ledger.increment(day_of(at), trigger_id, f"adopted:{BASELINE}")
        self.counters.adoption(trigger_id, BASELINE)
        return BASELINE

    # -- internals ---------------------------------------------------------------------------

    def _record(self, user_id: str, offer_id: str) -> OfferRecord:
        record = self._ledger.get(offer_id)
        if record is None or record.user_id != user_id:
            raise UnknownOffer(f"no offer {offer_id!r} is followed for user {user_id!r}")
        return record

    def _outcome(self, record: OfferRecord, outcome: str, reason: Optional[str], at: Optional[float]) -> bool:
        """The first of Show me, Open chat or a dismissal is the offer's outcome; later ones are not."""
        if record.stages & set(OUTCOMES):
            return False
        if outcome == "open_chat":
            record.open_chat_at = at
        if outcome == "dismissed":
            self._reach(record, "dismissed", f"dismissed:{reason}")
            self.counters.dismissed(record.trigger_id, str(reason))
        else:
            self._reach(record, outcome)
        logger.info("proactive offer %s: offer=%s trigger=%s user=%s%s", outcome.replace("_", " "), record.offer_id,
                    record.trigger_id, record.user_id, f" reason={reason}" if reason else "")
        return True

    def _reach(self, record: OfferRecord, stage: str, *details: str, count_stage: bool = True) -> bool:
        """Mark the stage reached (False if it already was) and count it with its details."""
        if stage in record.stages:
            return False
        record.stages.add(stage)
        self._ledger.save(record)
        day = record.day
        if count_stage:
            self._ledger.increment(day, record.trigger_id, f"stage:{stage}")
            self.counters.stage(record.trigger_id, stage)
        else:
            self._ledger.increment(day, record.trigger_id, stage)
        for detail in details:
            self._ledger.increment(day, record.trigger_id, detail)
        return True

    def _observe(self, record: OfferRecord, histogram: str, seconds: float) -> None:
        """A latency into the stored histogram: per-bucket counts and the sum in microseconds."""
        seconds = max(0.0, seconds)
        bucket = next((str(b) for b in LATENCY_BUCKETS if seconds <= b), "+Inf")
        self._ledger.increment(record.day, record.trigger_id, f"{histogram}:{bucket}")
        self._ledger.increment(record.day, record.trigger_id, f"{histogram}_sum_us", round(seconds * 1e6))


class AdoptionWatcher:
    """An ``ActionObserver`` on the activity store: each new action that matches a trigger's
    ``adopted`` rule is an adoption (a repeated event id is stored, and seen, once)."""

    def __init__(self, config: ProactiveConfig, journal: OfferJournal) -> None:
        self._rules = [
            (t.id, ActionMatcher(t.adopted.action), t.adopted.within_s) for t in config.triggers if t.adopted is not None
        ]
        self._journal = journal

    def added(self, session_id: str, action: SlimAction) -> None:
        for trigger_id, matches, within_s in self._rules:
            if action.user_id and matches(action):
                group = self._journal.adopted(action.user_id, trigger_id, action.timestamp_start, within_s)
                if group:
                    logger.info("proactive adoption: trigger=%s user=%s group=%s", trigger_id, action.user_id, group)

    def removed(self, session_id: str, action: SlimAction) -> None:
        pass

    def dropped(self, session_id: str) -> None:
        pass

    def unlinked(self, user_id: str) -> None:
        pass

    def restored(self, session_id: str, action: SlimAction) -> None:
        pass  # moved in from another store: counted where it was new


def tour_end(outcome: object, reason: object, step: object) -> Tuple[str, Optional[str], int]:
    """A tour's end as reported: ("completed", None, k) or ("abandoned", reason, k)."""
    number = step_number(step)
    if outcome == "completed":
        return "completed", None, number
    if outcome == "abandoned" and isinstance(reason, str) and reason in TOUR_END_REASONS:
        return "abandoned", reason, number
    raise BadOfferEvent(
        f"a tour ends 'completed', or 'abandoned' with a reason in {list(TOUR_END_REASONS)}; got {outcome!r:.40}, {reason!r:.40}"
    )


def step_number(step: object) -> int:
    """A tour step as reported: 1-based, bounded."""
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= MAX_TOUR_STEP:
        raise BadOfferEvent(f"step must be a whole number from 1 to {MAX_TOUR_STEP}, got {step!r:.40}")
    return step

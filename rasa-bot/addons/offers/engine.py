"""The proactive engine: ingest → activity → triggers → gate → caps → delivery, and the
user's side (chat messages, CTA clicks, tours).

It orchestrates and owns no state of its own: state is in the ``Stores``, the verdicts come
from an ``EvaluationStrategy``, the rules of ``SessionState`` are the ``SessionGate``'s.
Synchronous on purpose: ``SessionState`` has no locks, so every read-modify-write of a
session happens without an ``await`` in between, on the server's one event loop.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from autoplay_sdk.core.models import SlimAction

from addons.config import ProactiveConfig
from addons.insights.journal import AdoptionWatcher, OfferJournal
from addons.insights.metrics import OfferCounters
from addons.offers.caps import OfferCaps
from addons.offers.delivery import DeliveryHub, Subscription
from addons.offers.engagement import Engagement, TourStart, require_session
from addons.offers.evaluation import FullRescan, choose_strategy
from addons.offers.gate import SessionGate
from addons.offers.ingest import NormalisedBatch
from addons.offers.offer import Offer, TourOffer, since_cursor
from addons.offers.triggers import EVIDENCE_UNTIL, compile_registry
from addons.stores import build_stores
from addons.stores.protocols import Stores
from addons.urls import action_path, page_matches

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickReport:
    sessions: int  # evaluated in this pass (the incremental strategy skips sessions that cannot change)
    offers: int
    failures: int
    evicted: int


class ProactiveEngine:
    def __init__(
        self,
        config: ProactiveConfig,
        *,
        stores: Optional[Stores] = None,
        hub: Optional[DeliveryHub] = None,
        clock: Callable[[], float] = time.time,
        incremental: bool = True,
        counters: Optional[OfferCounters] = None,
    ) -> None:
        """``incremental=False`` keeps the reference strategy (``FullRescan``), which is also
        what runs when a trigger cannot be indexed (built-ins). ``counters``: where the offers'
        numbers go (the runtime's Prometheus metrics; by default a registry of its own)."""
        self.config = config
        self.stores = stores or build_stores(config)
        if hub is not None:  # a hub given (tests, benchmarks) brings the offer store it records into
            self.stores = replace(self.stores, offers=hub.offers)
        self.activity = self.stores.activity
        self.gate = SessionGate.for_config(self.stores.session_states, config)
        self.hub = hub or DeliveryHub(self.stores.offers)
        self.caps = OfferCaps(config.caps, self.stores.offer_history)
        self.registry = compile_registry(config)
        self.strategy = choose_strategy(
            config, self.registry, self.activity, self.gate, self.stores.tick_plan, incremental=incremental
        )
        self.engagement = Engagement(config, self.activity, self.gate, self.strategy)
        self.journal = OfferJournal(config, self.stores.ledger, counters)
        self.activity.add_observer(AdoptionWatcher(config, self.journal))
        self._reference = (  # explains /debug verdicts; the strategy itself when it is the full rescan
            self.strategy if isinstance(self.strategy, FullRescan)
            else FullRescan(config, self.registry, self.activity, self.gate)
        )
        self._clock = clock
        self._ingest_listeners: List[Callable[[Set[Tuple[str, str]]], None]] = []

    # -- events in -------------------------------------------------------------------

    def ingest(self, batch: NormalisedBatch, *, now: Optional[float] = None) -> List[Offer]:
        """Store a batch and evaluate each touched user at once (no waiting for a tick)."""
        now = self._clock() if now is None else now
        for person in batch.people:
            self.stores.first_names.set(person.user_id, person.first_name)
        changed = self.activity.add(batch.actions, now=now)
        for _, session_id in changed:
            self.stores.offers.clear_expired(session_id)
        for listener in self._ingest_listeners:
            try:
                listener(changed)
            except Exception:
                logger.exception("an ingest listener failed; evaluation continues")
        offers = []
        for user_id in sorted({user_id for user_id, _ in changed}):
            latest = self.activity.latest_session(user_id)
            if latest is not None:
                offer = self._evaluate_isolated(user_id, latest, now)
                if offer is not None:
                    offers.append(offer)
        return offers

    def add_ingest_listener(self, listener: Callable[[Set[Tuple[str, str]]], None]) -> None:
        """Called with the (user_id, session_id) pairs each ingest changed (e.g. session summaries)."""
        self._ingest_listeners.append(listener)

    def tick(self, *, now: Optional[float] = None) -> TickReport:
        """The periodic pass: evict idle sessions, time states out, run time-based triggers."""
        now = self._clock() if now is None else now
        self.stores.clock_skew.expire(now=now)
        self._expire_pending(now)
        evicted = self.activity.evict(now=now)
        # Forget the state of a dropped session only if it is still gone at tick time (one
        # re-created by new events in between keeps its state).
        for session_id in self.strategy.gone_sessions():
            if self.activity.user_of(session_id) is None:
                self._forget_session(session_id)
        sessions = offers = failures = 0
        for user_id, session_id in self.strategy.due(now):
            sessions += 1
            try:
                offers += self._evaluate(user_id, session_id, now) is not None
            except Exception:
                failures += 1
                self.strategy.retry(session_id)
                logger.exception("tick failed for session %s of user %s; continuing", session_id, user_id)
        return TickReport(sessions=sessions, offers=offers, failures=failures, evicted=evicted)

    # -- toast streams --------------------------------------------------------------------

    def subscribe(self, user_id: str, *, last_event_id: Optional[str] = None, now: Optional[float] = None) -> Subscription:
        """A toast stream opens: it gets what it missed (``last_event_id``), or, a new tab, the
        offers no tab showed (``_never_shown``); then pending offers."""
        now = self._clock() if now is None else now
        subscription = self.hub.subscribe(user_id, last_event_id=last_event_id, now=now)
        if not last_event_id:
            for offer in self._never_shown(user_id, now):
                logger.info("proactive offer given to a new tab: offer=%s user=%s no tab showed it", offer.offer_id, user_id)
                subscription.put(offer)
        self.take_pending(user_id, now=now)
        return subscription

    def take_pending(self, user_id: str, *, now: Optional[float] = None) -> None:
        """The user has a stream open: the offers parked for them are delivered, if still allowed."""
        now = self._clock() if now is None else now
        self._expire_pending(now)  # before the tick does: an offer past its time must not vanish uncounted
        for offer in self.stores.offers.take_pending(user_id, now):
            self._deliver_pending(offer, now)

    def unsubscribe(self, subscription: Subscription) -> None:
        self.hub.unsubscribe(subscription)

    def close_streams(self) -> None:
        """Server shutdown: every open stream ends (else they hold it for Sanic's grace period)."""
        self.hub.close_all()

    # -- the user's side (offers.engagement) -------------------------------------------------

    def on_chat_message(self, user_id: str) -> bool:
        return self.engagement.on_chat_message(user_id)

    def engage_chat(self, user_id: str, trigger_id: Optional[str]) -> bool:
        return self.engagement.engage_chat(user_id, trigger_id)

    def start_tour(self, user_id: str, tour_id: str) -> TourStart:
        return self.engagement.start_tour(user_id, tour_id)

    def record_tour_step(self, user_id: str) -> Dict[str, str]:
        return self.engagement.record_tour_step(user_id)

    def end_tour(self, user_id: str) -> Dict[str, str]:
        return self.engagement.end_tour(user_id)

    # -- introspection ------------------------------------------------------------------

    @property
    def clock(self) -> Callable[[], float]:
        """The engine's wall clock (epoch seconds): what "now" means for its activity."""
        return self._clock

    def stats(self) -> Dict[str, int]:
        """Counts for /health."""
        return {
            "sessions": self.activity.session_count(),
            "subscribers": self.hub.subscriber_count(),
            "pending_offers": self.stores.offers.pending_count(),
        }

    def debug(self, user_id: str, *, now: Optional[float] = None) -> Dict[str, Any]:
        """Everything needed to see why an offer did or did not fire for a user."""
        now = self._clock() if now is None else now
        session_id = require_session(self.activity, user_id)
        gate = self.gate.check(session_id)
        caps = self.caps.check(user_id, session_id, now)
        actions, verdicts = self._reference.explain(session_id, now)
        return {
            "user_id": user_id,
            "session_id": session_id,
            "state": self.gate.snapshot(session_id),
            "gate": {"open": gate.allowed, "reason": gate.reason},
            "caps": {"open": caps.allowed, "reason": caps.reason},
            "pending_offer": self.stores.offers.has_pending(session_id),
            "last_offer": self.gate.last_offer(session_id),
            "subscribers": self.hub.subscriber_count(user_id),
            "recent_actions": [_action_row(a) for a in actions],
            "triggers": [v.to_dict() for v in verdicts],
        }

    def how_to(self, trigger_id: str) -> Tuple[str, ...]:
        trigger = self.config.trigger(trigger_id)
        return trigger.how_to if trigger else ()

    # -- internals ----------------------------------------------------------------------

    def _evaluate_isolated(self, user_id: str, session_id: str, now: float) -> Optional[Offer]:
        try:
            return self._evaluate(user_id, session_id, now)
        except Exception:
            logger.exception("evaluating session %s of user %s failed; other sessions continue", session_id, user_id)
            return None

    def _evaluate(self, user_id: str, session_id: str, now: float) -> Optional[Offer]:
        offers = self.stores.offers
        if offers.expired_unseen(session_id) or offers.has_pending(session_id):
            # Nothing changes that before the offer is taken (its stream plans a look), expires
            # (the tick expires pending offers by their time) or new activity clears the mark
            # (which evaluates at once): no tick needs to look until then.
            self.strategy.wake_at(session_id, float("inf"))
            return None
        if not self.gate.check(session_id).allowed:
            self.strategy.watch(session_id)  # only a tick can open it again
            return None
        result, latest = self.strategy.evaluate(session_id, now)
        if result is None:
            return None
        caps = self.caps.check(user_id, session_id, now)
        if not caps.allowed:
            if self.gate.note_cap_refusal(session_id, caps.kind):
                self.caps.log_refusal(result.trigger_id, user_id, session_id, caps.reason)
            self.strategy.wake_at(session_id, caps.opens_at)
            return None
        # An offer counts (session state, cooldown, caps) once a toast stream receives it:
        # with no stream open it waits, and nobody is put on cooldown for a toast never seen.
        live = self.hub.subscriber_count(user_id) > 0
        if live and not self.gate.try_offer(session_id, result.trigger_id).allowed:
            self.strategy.watch(session_id)
            return None
        offer = Offer(
            offer_id=uuid.uuid4().hex,
            user_id=user_id,
            session_id=session_id,
            trigger_id=result.trigger_id,
            body=result.body,
            tours=self._tours_on_screen(result.trigger_id, latest),
            created_at=now,
            # Everything stamped up to now, and any future-stamped action that counted.
            evidence_until=max(now, float((result.metadata or {}).get(EVIDENCE_UNTIL, now))),
        )
        logger.info(
            "proactive trigger firing: trigger=%s session=%s user=%s", offer.trigger_id, session_id, user_id
        )
        self.journal.fired(offer)
        if live:
            self.strategy.watch(session_id)  # PROACTIVE now: the tick times it out
            self._deliver(offer, now)
            return offer
        ttl = self.config.delivery.pending_ttl_s
        if ttl > 0:
            offers.park(offer, expires_at=now + ttl)
            logger.info("proactive offer pending: offer=%s user=%s no open toast stream; kept %g s", offer.offer_id, user_id, ttl)
        else:
            self.journal.expired(offer)
            logger.info("proactive offer dropped: offer=%s user=%s no open toast stream", offer.offer_id, user_id)
        return offer

    def _never_shown(self, user_id: str, now: float) -> List[Offer]:
        """The offers delivered within ``delivery.pending_ttl_s`` that no browser reported shown:
        the tab they reached closed first, or its replica died while its streams still counted
        as open. A new tab gets them as it would a parked offer; they count already, so nothing
        moves again. (The toast reports ``shown`` as it appears: a front-end that does not would
        see each offer again in every tab it opens for that long.)"""
        ttl = self.config.delivery.pending_ttl_s
        if ttl <= 0:
            return []
        recent = self.stores.offers.missed_since(user_id, since_cursor(now - ttl), now)
        return [offer for offer in recent if self.journal.never_shown(offer.offer_id)]

    def _deliver(self, offer: Offer, now: float) -> None:
        """The offer is made: session state, cooldown and caps move alike for a held-out user,
        so both groups of the lift get offers at the same pace; only the toast is withheld."""
        self.gate.record_offer(offer.session_id, offer.offer_id, offer.trigger_id, now, evidence_until=offer.evidence_until)
        self.caps.record(offer.user_id, offer.session_id, now)
        if self.journal.holds_out(offer):
            self.journal.decided(offer, shown=False)
            logger.info("proactive offer held out: offer=%s trigger=%s user=%s", offer.offer_id, offer.trigger_id, offer.user_id)
            return
        self.journal.decided(offer, shown=True)
        subscribers = self.hub.publish(offer, now=now)
        logger.info(
            "proactive offer published: offer=%s user=%s subscribers=%d", offer.offer_id, offer.user_id, subscribers
        )

    def _deliver_pending(self, offer: Offer, now: float) -> None:
        """A tab connected while the offer waited: deliver it if it may still be made."""
        gate = self.gate.check(offer.session_id)
        caps = self.caps.check(offer.user_id, offer.session_id, now)
        refusal = None if gate.allowed else gate.reason
        refusal = refusal or (None if caps.allowed else caps.reason)
        if refusal is None and not self.gate.try_offer(offer.session_id, offer.trigger_id).allowed:
            refusal = "the session state refused it"
        if refusal is not None:
            logger.info("proactive pending offer dropped: offer=%s user=%s reason=%s", offer.offer_id, offer.user_id, refusal)
            self.journal.expired(offer)
            # Look again when what refused it could let it through (the full rescan looks every tick).
            self.strategy.watch(offer.session_id)
            if not caps.allowed:
                self.strategy.wake_at(offer.session_id, caps.opens_at)
            return
        self.strategy.watch(offer.session_id)
        logger.info("proactive pending offer delivered: offer=%s user=%s waited %.1f s", offer.offer_id, offer.user_id, now - offer.created_at)
        self._deliver(offer, now)

    def _expire_pending(self, now: float) -> None:
        for offer in self.stores.offers.expire(now):
            self.journal.expired(offer)
            logger.info(
                "proactive offer expired: offer=%s user=%s no toast stream opened within %g s; no cooldown, not counted",
                offer.offer_id, offer.user_id, self.config.delivery.pending_ttl_s,
            )

    def _forget_session(self, session_id: str) -> None:
        """The session is gone from the activity store: drop what was kept about it."""
        self.gate.forget(session_id)
        self.stores.offers.clear_expired(session_id)

    def _tours_on_screen(self, trigger_id: str, latest: Optional[SlimAction]) -> Tuple[TourOffer, ...]:
        """Tours of the trigger whose anchors are on the user's current page."""
        trigger = self.config.trigger(trigger_id)
        if trigger is None or latest is None:
            return ()
        path = action_path(latest)
        tours = (self.config.tour(t) for t in trigger.tours)
        return tuple(TourOffer(t.id, t.flow_id, t.label) for t in tours if t is not None and page_matches(t.page, path))




def _action_row(action: SlimAction) -> Dict[str, Any]:
    return {
        "at": datetime.fromtimestamp(action.timestamp_start, tz=timezone.utc).isoformat(),
        "type": action.type,
        "label": action.title,
        "url": action.raw_url,
        "text": action.to_text(),
    }

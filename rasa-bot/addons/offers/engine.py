"""The proactive engine: ingest → activity → triggers → gate → delivery, plus the CTA side.

Synchronous on purpose: ``SessionState`` has no locks, so every read-modify-write of a
session happens without an ``await`` in between, on the server's one event loop.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from autoplay_sdk.agent_state.v2 import AgentStateV2, SessionState
from autoplay_sdk.agent_state.v2 import session_state as sdk_session_state
from autoplay_sdk.core.models import SlimAction
from autoplay_sdk.proactive.triggers import ProactiveTriggerContext, ProactiveTriggerResult
from autoplay_sdk.proactive.triggers.context_source import build_proactive_context_from_payloads
from autoplay_sdk.proactive.triggers.tour_registry import TourRegistry

from addons.offers.activity import ActivityStore, FirstNames, InMemoryActivityStore
from addons.offers.caps import OfferCaps
from addons.config import BuiltinTriggerConfig, ProactiveConfig
from addons.offers.delivery import DeliveryHub, InMemoryDeliveryHub, Offer, Subscription, TourOffer
from addons.offers.gate import InMemorySessionStateStore, SessionGate, SessionStateStore
from addons.offers.index import TriggerIndex
from addons.offers.ingest import ClockSkew, NormalisedBatch
from addons.offers.schedule import NOW, TickSchedule
from addons.offers.triggers import EVAL_NOW, RepeatedActionTrigger, action_path, compile_registry, explain_all, latest_action

logger = logging.getLogger(__name__)


class UnknownUser(LookupError):
    """No activity is tracked for this user id (yet, or any more)."""


class UnknownTour(LookupError):
    """The tour id is not in the tour registry of proactive.yml."""


class NoActiveTour(LookupError):
    """A tour step or end arrived while no tour is running for the user."""


@dataclass(frozen=True)
class TourStart:
    tour_id: str
    flow_id: str
    session_id: str


@dataclass(frozen=True)
class TickReport:
    sessions: int  # evaluated in this pass (the scheduled tick skips sessions that cannot change)
    offers: int
    failures: int
    evicted: int


class ProactiveEngine:
    def __init__(
        self,
        config: ProactiveConfig,
        *,
        activity: Optional[ActivityStore] = None,
        states: Optional[SessionStateStore] = None,
        hub: Optional[DeliveryHub] = None,
        clock: Callable[[], float] = time.time,
        incremental: bool = True,
    ) -> None:
        """``incremental=False`` keeps the reference path: every evaluation rebuilds the
        session's context from all its actions and every tick visits every session. It is
        also what runs when a trigger cannot be indexed (built-ins) or the activity store is
        not the in-memory one."""
        self.config = config
        self.activity = activity or InMemoryActivityStore(config.activity, product_id=config.product_id)
        self.first_names = FirstNames(config.activity.max_sessions)
        self._tours = _sdk_tours(config)
        self.gate = SessionGate(states or InMemorySessionStateStore(config.session), tours=self._tours)
        self.hub = hub or InMemoryDeliveryHub(replay_s=config.delivery.replay_s)
        self.caps = OfferCaps(config.caps, max_users=config.activity.max_sessions)
        self.registry = compile_registry(config)
        self._suppressed: "OrderedDict[str, str]" = OrderedDict()  # session → last cap reason logged
        # Sessions whose offer expired unseen: not offered again on the same evidence (the
        # periodic pass would re-fire it forever); their next events clear the mark.
        self._expired_unseen: "OrderedDict[str, float]" = OrderedDict()
        self.clock_skew = ClockSkew(max_clients=config.activity.max_sessions)
        self._clock = clock
        self._ingest_listeners: List[Callable[[Set[Tuple[str, str]]], None]] = []
        self._context_extra: Dict[str, Any] = {}
        for trigger in config.triggers:
            if isinstance(trigger, BuiltinTriggerConfig):
                self._context_extra.update(trigger.context_extra)
        self.index: Optional[TriggerIndex] = None
        self.schedule: Optional[TickSchedule] = None
        indexable = [t.inner for t in self.registry.triggers]
        if incremental and isinstance(self.activity, InMemoryActivityStore) and all(
            isinstance(t, RepeatedActionTrigger) for t in indexable
        ):
            self.index = TriggerIndex(indexable)
            self.schedule = TickSchedule()
            self._orphaned_users: Set[str] = set()
            self._dropped_sessions: Set[str] = set()
            self.activity.add_observer(self.index)
            self.activity.add_observer(_Scheduler(self))

    # -- events in -------------------------------------------------------------------

    def ingest(self, batch: NormalisedBatch, *, now: Optional[float] = None) -> List[Offer]:
        """Store a batch and evaluate each touched user at once (no waiting for a tick)."""
        now = self._clock() if now is None else now
        for person in batch.people:
            self.first_names.set(person.user_id, person.first_name)
        changed = self.activity.add(batch.actions, now=now)
        for _, session_id in changed:
            self._expired_unseen.pop(session_id, None)
        for listener in self._ingest_listeners:
            try:
                listener(changed)
            except Exception:
                logger.exception("an ingest listener failed; evaluation continues")
        offers = []
        for user_id in sorted({user_id for user_id, _ in changed}):
            session_id = self.activity.latest_session(user_id)
            if session_id is not None:
                offer = self._evaluate_isolated(user_id, session_id, now)
                if offer is not None:
                    offers.append(offer)
        return offers

    def add_ingest_listener(self, listener: Callable[[Set[Tuple[str, str]]], None]) -> None:
        """Called with the (user_id, session_id) pairs each ingest changed (e.g. session summaries)."""
        self._ingest_listeners.append(listener)

    def tick(self, *, now: Optional[float] = None) -> TickReport:
        """The periodic pass: evict idle sessions, time states out, run time-based triggers."""
        now = self._clock() if now is None else now
        self.clock_skew.expire(now=now)
        for offer in self.hub.expire(now):
            self._expired_unseen[offer.session_id] = now
            while len(self._expired_unseen) > self.config.activity.max_sessions:
                self._expired_unseen.popitem(last=False)
            logger.info(
                "proactive offer expired: offer=%s user=%s no toast stream opened within %g s; no cooldown, not counted",
                offer.offer_id, offer.user_id, self.config.delivery.pending_ttl_s,
            )
        if self.schedule is not None:
            return self._tick_scheduled(now)
        evicted = self.activity.evict(now=now)
        for session_id in self.gate.store.session_ids():
            if self.activity.user_of(session_id) is None:
                self._forget_session(session_id)
        sessions = offers = failures = 0
        for user_id, session_id in list(self.activity.latest_sessions()):
            sessions += 1
            try:
                offers += self._evaluate(user_id, session_id, now) is not None
            except Exception:
                failures += 1
                logger.exception("tick failed for session %s of user %s; continuing", session_id, user_id)
        return TickReport(sessions=sessions, offers=offers, failures=failures, evicted=evicted)

    def _tick_scheduled(self, now: float) -> TickReport:
        """The same pass, visiting only the sessions the schedule says could change
        (``addons.offers.schedule``); the others would get the verdict they already got."""
        assert self.schedule is not None
        evicted = self.activity.evict(now=now)
        # Like the full pass, forget the state of a dropped session only if it is still gone
        # at tick time (one re-created by new events in between keeps its state).
        for session_id in self._dropped_sessions:
            if self.activity.user_of(session_id) is None:
                self._forget_session(session_id)
        self._dropped_sessions.clear()
        for user_id in sorted(self._orphaned_users):
            session_id = self.activity.latest_session(user_id)
            if session_id is not None:
                self.schedule.wake_at(session_id, NOW)
        self._orphaned_users.clear()
        sessions = offers = failures = 0
        for session_id in self.schedule.due(now, _gate_clock()):
            user_id = self.activity.user_of(session_id)
            if user_id is None or self.activity.latest_session(user_id) != session_id:
                self.schedule.forget(session_id)  # only a user's latest session is evaluated
                continue
            sessions += 1
            try:
                offers += self._evaluate(user_id, session_id, now) is not None
            except Exception:
                failures += 1
                self.schedule.wake_at(session_id, NOW)  # try again next tick, as a full pass would
                logger.exception("tick failed for session %s of user %s; continuing", session_id, user_id)
        return TickReport(sessions=sessions, offers=offers, failures=failures, evicted=evicted)

    # -- toast streams --------------------------------------------------------------------

    def subscribe(self, user_id: str, *, last_event_id: Optional[str] = None, now: Optional[float] = None) -> Subscription:
        """A toast stream opens: it gets what it missed (``last_event_id``), then pending offers."""
        now = self._clock() if now is None else now
        subscription = self.hub.subscribe(user_id, last_event_id=last_event_id, now=now)
        for offer in self.hub.take_pending(user_id, now):
            self._deliver_pending(offer, now)
        return subscription

    # -- the user's side ----------------------------------------------------------------

    def on_chat_message(self, user_id: str) -> bool:
        """A chat message from the user: their latest session turns reactive."""
        session_id = self.activity.latest_session(user_id)
        if session_id is None:
            return False
        self.gate.on_user_message(session_id)
        self._watch(session_id)
        return True

    def engage_chat(self, user_id: str, trigger_id: Optional[str]) -> bool:
        """The user clicked "Open chat" on an offer."""
        session_id = self.activity.latest_session(user_id)
        if session_id is None:
            return False
        self.gate.engage(session_id, trigger_id or self._last_trigger(session_id) or "chat")
        self._watch(session_id)
        return True

    def start_tour(self, user_id: str, tour_id: str) -> TourStart:
        tour = self.config.tour(tour_id)
        if tour is None:
            raise UnknownTour(f"unknown tour {tour_id!r}; known: {[t.id for t in self.config.tours]}")
        session_id = self._require_session(user_id)
        trigger_id = self._last_trigger(session_id) or next(
            (t.id for t in self.config.triggers if tour_id in t.tours), tour_id
        )
        self.gate.start_guidance(session_id, trigger_id, tour_id=tour.id, flow_id=tour.flow_id)
        self._watch(session_id)
        logger.info(
            "proactive tour started: tour=%s flow=%s user=%s session=%s", tour.id, tour.flow_id, user_id, session_id
        )
        return TourStart(tour_id=tour.id, flow_id=tour.flow_id, session_id=session_id)

    def record_tour_step(self, user_id: str) -> Dict[str, str]:
        session_id = self._require_session(user_id)
        tour = self.gate.record_step(session_id)
        self._watch(session_id)
        if tour is None:
            raise NoActiveTour(f"no tour is running for user {user_id!r}")
        logger.info("proactive tour step: tour=%s user=%s", tour["tour_id"], user_id)
        return tour

    def end_tour(self, user_id: str) -> Dict[str, str]:
        session_id = self._require_session(user_id)
        tour = self.gate.end_guidance(session_id)
        self._watch(session_id)
        if tour is None:
            raise NoActiveTour(f"no tour is running for user {user_id!r}")
        logger.info("proactive tour ended: tour=%s user=%s", tour["tour_id"], user_id)
        return tour

    # -- introspection ------------------------------------------------------------------

    @property
    def clock(self) -> Callable[[], float]:
        """The engine's wall clock (epoch seconds): what "now" means for its activity."""
        return self._clock

    def debug(self, user_id: str, *, now: Optional[float] = None) -> Dict[str, Any]:
        """Everything needed to see why an offer did or did not fire for a user."""
        now = self._clock() if now is None else now
        session_id = self._require_session(user_id)
        gate = self.gate.check(session_id)
        caps = self.caps.check(user_id, session_id, now)
        ctx = self._context(session_id, now)
        return {
            "user_id": user_id,
            "session_id": session_id,
            "state": self.gate.snapshot(session_id),
            "gate": {"open": gate.allowed, "reason": gate.reason},
            "caps": {"open": caps.allowed, "reason": caps.reason},
            "pending_offer": self.hub.has_pending(session_id),
            "last_offer": self.gate.last_offer(session_id),
            "subscribers": self.hub.subscriber_count(user_id),
            "recent_actions": [_action_row(a) for a in ctx.recent_actions],
            "triggers": [v.to_dict() for v in explain_all(self.registry, ctx)],
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
        if session_id in self._expired_unseen or self.hub.has_pending(session_id):
            return None
        if not self.gate.check(session_id).allowed:
            self._watch(session_id)  # only a tick can open it again
            return None
        if self.index is not None:
            latest = self.activity.latest_action(session_id)  # type: ignore[attr-defined]
            result = self._evaluate_indexed(session_id, latest, now)
        else:
            ctx = self._context(session_id, now)
            result = self.registry.evaluate_first(ctx)
            latest = latest_action(ctx) if ctx.recent_actions else None
        if result is None:
            return None
        caps = self.caps.check(user_id, session_id, now)
        if not caps.allowed:
            self._note_suppressed(result.trigger_id, user_id, session_id, caps.reason)
            if self.schedule is not None:
                self.schedule.wake_at(session_id, caps.opens_at)
            return None
        # An offer counts (session state, cooldown, caps) once a toast stream receives it:
        # with no stream open it waits, and nobody is put on cooldown for a toast never seen.
        live = self.hub.subscriber_count(user_id) > 0
        if live and not self.gate.try_offer(session_id, result.trigger_id).allowed:
            self._watch(session_id)
            return None
        offer = Offer(
            offer_id=uuid.uuid4().hex,
            user_id=user_id,
            session_id=session_id,
            trigger_id=result.trigger_id,
            body=result.body,
            tours=self._tours_on_screen(result.trigger_id, latest),
            created_at=now,
        )
        logger.info(
            "proactive trigger firing: trigger=%s session=%s user=%s", offer.trigger_id, session_id, user_id
        )
        if live:
            self._watch(session_id)  # PROACTIVE now: the tick times it out
            self._deliver(offer, now)
            return offer
        ttl = self.config.delivery.pending_ttl_s
        if ttl > 0:
            self.hub.park(offer, expires_at=now + ttl)
            logger.info("proactive offer pending: offer=%s user=%s no open toast stream; kept %g s", offer.offer_id, user_id, ttl)
        else:
            logger.info("proactive offer dropped: offer=%s user=%s no open toast stream", offer.offer_id, user_id)
        return offer

    def _deliver(self, offer: Offer, now: float) -> None:
        self.gate.record_offer(offer.session_id, offer.offer_id, offer.trigger_id, now)
        self.caps.record(offer.user_id, offer.session_id, now)
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
            return
        self._watch(offer.session_id)
        logger.info("proactive pending offer delivered: offer=%s user=%s waited %.1f s", offer.offer_id, offer.user_id, now - offer.created_at)
        self._deliver(offer, now)

    def _note_suppressed(self, trigger_id: str, user_id: str, session_id: str, reason: str) -> None:
        """One log line per session and reason, not one per event while the cap holds."""
        kind = reason.split(":", 1)[0]
        if self._suppressed.get(session_id) == kind:
            return
        self._suppressed[session_id] = kind
        self._suppressed.move_to_end(session_id)
        while len(self._suppressed) > self.config.activity.max_sessions:
            self._suppressed.popitem(last=False)
        logger.info("proactive offer suppressed: trigger=%s user=%s session=%s reason=%s", trigger_id, user_id, session_id, reason)

    def _evaluate_indexed(self, session_id: str, latest: Optional[SlimAction], now: float) -> Optional[ProactiveTriggerResult]:
        """``registry.evaluate_first`` from the index: first match wins, a raising trigger is
        logged and skipped (as ``IsolatedTrigger`` does); plans the next look if none fires."""
        assert self.index is not None and self.schedule is not None
        wake = float("inf")
        for position, trigger in enumerate(self.index.triggers):
            marks = self.index.marks(session_id, position)
            try:
                result = trigger.evaluate_marks(marks, latest, now)
                if result is not None:
                    return result
                wake = min(wake, trigger.next_change(marks, now))
            except Exception:
                logger.exception("trigger %s raised on session %s; skipped", trigger.trigger_id, session_id)
                wake = NOW  # a full pass would ask it again next tick
        self.schedule.settle(session_id, wake)
        return None

    def _forget_session(self, session_id: str) -> None:
        """The session is gone from the activity store: drop what the engine kept about it."""
        self.gate.forget(session_id)
        self._expired_unseen.pop(session_id, None)
        self._suppressed.pop(session_id, None)

    def _watch(self, session_id: str) -> None:
        """The gate was closed (or just changed): plan a look for when it could reopen."""
        if self.schedule is not None:
            self.schedule.watch(session_id, self._gate_opens_at(self.gate.store.get(session_id)))

    def _gate_opens_at(self, state: Optional[SessionState]) -> float:
        """The earliest time (SessionState's monotonic clock) its ``tick()`` could change it
        by itself: the interaction timeout (per tour, as the SDK resolves it) or the end of
        the cooldown. Any interaction goes through the engine, which asks again."""
        if state is None:
            return NOW
        if state.current_state is AgentStateV2.THINKING:
            thinking = state.thinking
            if not thinking.cooldown_active:
                return NOW
            period = thinking.active_cooldown_period_s
            return thinking.cooldown_started_at + (state.cooldown_period_s if period is None else period)
        if state.current_state in (AgentStateV2.PROACTIVE, AgentStateV2.REACTIVE):
            timeout = state.interaction_timeout_s
            if state.active_tour_id is not None:
                tour = self._tours.get_by_user_tour_id(state.active_tour_id)
                if tour is not None:
                    timeout = tour.interaction_timeout_s
            return state.last_interaction_at + timeout
        return NOW  # a state this engine does not know: look every tick

    def _context(self, session_id: str, now: float) -> ProactiveTriggerContext:
        payloads = self.activity.load_payloads(product_id=self.config.product_id, session_id=session_id)
        return build_proactive_context_from_payloads(
            payloads,
            lookback_seconds=None,  # the store already bounds history; triggers apply their own windows
            max_actions=None,
            now=now,
            session_id=session_id,
            product_id=self.config.product_id,
            action_count=sum(p.count for p in payloads),
            context_extra={**self._context_extra, EVAL_NOW: now},
        )

    def _tours_on_screen(self, trigger_id: str, latest: Optional[SlimAction]) -> Tuple[TourOffer, ...]:
        """Tours of the trigger whose anchors are on the user's current page."""
        trigger = self.config.trigger(trigger_id)
        if trigger is None or latest is None:
            return ()
        path = action_path(latest)
        tours = (self.config.tour(t) for t in trigger.tours)
        return tuple(TourOffer(t.id, t.flow_id, t.label) for t in tours if t is not None and t.page in path)

    def _require_session(self, user_id: str) -> str:
        session_id = self.activity.latest_session(user_id)
        if session_id is None:
            raise UnknownUser(f"no activity is tracked for user {user_id!r}")
        return session_id

    def _last_trigger(self, session_id: str) -> Optional[str]:
        last = self.gate.last_offer(session_id)
        return last["trigger_id"] if last else None


def _gate_clock() -> float:
    """Now, on the clock ``SessionState`` stamps its timers with."""
    return sdk_session_state.time.monotonic()


class _Scheduler:
    """Keeps the engine's tick plan in step with the activity store (an ``ActionObserver``)."""

    def __init__(self, engine: ProactiveEngine) -> None:
        self._engine = engine

    def added(self, session_id: str, action: SlimAction) -> None:
        # Ingest evaluates at once and re-plans; actions stored any other way wait for the tick.
        assert self._engine.schedule is not None
        self._engine.schedule.wake_at(session_id, NOW)

    def removed(self, session_id: str, action: SlimAction) -> None:
        pass  # trimming happens inside add(), whose added() already woke the session

    def dropped(self, session_id: str) -> None:
        assert self._engine.schedule is not None
        self._engine.schedule.forget(session_id)
        self._engine._dropped_sessions.add(session_id)

    def unlinked(self, user_id: str) -> None:
        self._engine._orphaned_users.add(user_id)


def _sdk_tours(config: ProactiveConfig) -> TourRegistry:
    return TourRegistry.from_dict(
        {
            "product_id": config.product_id,
            "default_interaction_timeout_s": config.session.interaction_timeout_s,
            "default_cooldown_period_s": config.session.cooldown_period_s,
            "tours": [
                {
                    "id": t.id,
                    "user_tour_id": t.flow_id,
                    "user_tour_name": t.label,
                    "interaction_timeout_s": t.interaction_timeout_s,
                    "cooldown_period_s": t.cooldown_period_s,
                }
                for t in config.tours
            ],
        }
    )


def _action_row(action: Any) -> Dict[str, Any]:
    return {
        "at": datetime.fromtimestamp(action.timestamp_start, tz=timezone.utc).isoformat(),
        "type": action.type,
        "label": action.title,
        "url": action.raw_url,
        "text": action.to_text(),
    }

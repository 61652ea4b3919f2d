"""The copilot as it runs inside ``rasa run``: every part built from ``proactive.yml``, and
the few operations the HTTP channel exposes, so the channel only parses and answers.

Nothing here imports Sanic: the channel hands in bytes, ids and Rasa's own objects (the
agent, the socketio input channel), and gets values or a ``ProactiveError`` back.
"""

from __future__ import annotations

import logging
import os

from redis.asyncio import Redis
import sys
import time
import uuid
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from rasa.core.agent import Agent
from rasa.core.channels.channel import InputChannel

from addons.answers import grounded
from addons.answers.grounded import GroundedAssistant
from addons.answers.llm import resolve_llm
from addons.config import STORES, ConfigError, ProactiveConfig
from addons.errors import ChatNotReady, StoreUnavailable
from addons.insights.funnel import funnel, period
from addons.insights.journal import BadOfferEvent, UnknownOffer, step_number, tour_end
from addons.insights.metrics import OfferMetrics
from addons.offers.engagement import TourStart
from addons.offers.delivery import Subscription
from addons.offers.engine import ProactiveEngine
from addons.offers.service import LocalOffers, OfferService
from addons.offers.ingest import IngestError, NormalisedBatch, check_size, decode_capture_body, loads_json, normalise_batch
from addons.offers.sources import autoplay_destination_batch, connector_batch, posthog_webhook_batch
from addons.rasa.chat import FollowUpRequest, send_proactive_question
from addons.rasa.chat_sessions import ChatSessionRegistry, ChatSessions
from addons.rasa.shared_chat_sessions import RedisChatSessions
from addons.stores.redis.client import redis_client, units_client
from addons.stores.redis.offers import SharedOffers
from addons.stores.redis.outage import RedisOutage
from addons.rasa.driver import ProactiveDriver, tune_gc_for_serving
from addons.rasa.inprocess_actions import InProcessActionEndpoint
from addons.security.deployment import check_deployment
from addons.security.identity import IdentityVerifier
from addons.security.limits import IngestGuard
from addons.security.readers import InsightsReaders
from addons.security.sources import (
    AUTOPLAY_CONNECTOR, POSTHOG_WEBHOOK, SECRET_ENV, BadSourceSecret, SourceNotConfigured, source_auths,
)

logger = logging.getLogger(__name__)

REDIS_URL_ENV = "PROACTIVE_REDIS_URL"
STORE_ENV = "PROACTIVE_STORE"


class CopilotRuntime:
    def __init__(
        self,
        config: ProactiveConfig,
        *,
        max_body_bytes: int = 1_048_576,
        actions_package: Optional[str] = "actions",
        environ: Mapping[str, str] = os.environ,
        argv: Optional[Sequence[str]] = None,
    ) -> None:
        self.config = config
        self.offer_metrics = OfferMetrics(t.id for t in config.triggers)
        self.engine = ProactiveEngine(config, counters=self.offer_metrics)
        self.max_body_bytes = max_body_bytes
        self.actions_package = actions_package
        self.llm = resolve_llm(config.llm, environ)
        self.identity = IdentityVerifier.from_config(config.identity, environ)
        for finding in check_deployment(config, environ, sys.argv if argv is None else argv):  # refuses instead, with PROACTIVE_PRODUCTION=1
            logger.warning("proactive setting unsafe for production: %s", finding)
        self.ingest_guard = IngestGuard(config.ingest)
        self.sources = source_auths(config.sources, environ)
        self.redis_url = environ.get(REDIS_URL_ENV) or config.redis.url
        store = environ.get(STORE_ENV) or config.store
        if store not in STORES:
            raise ConfigError(f"{STORE_ENV}: expected one of {list(STORES)}, got {store!r}")
        if store == "redis" and not self.redis_url:
            raise ConfigError(f"store: redis needs a Redis: set redis.url in proactive.yml or {REDIS_URL_ENV}")
        self.replica_id = uuid.uuid4().hex[:12]
        self.redis_outage = RedisOutage()  # every Redis part reports here: one log line per outage start and end
        self.chat_sessions: ChatSessionRegistry = (
            RedisChatSessions.from_url(self.redis_url, replica_id=self.replica_id, outage=self.redis_outage)
            if self.redis_url
            else ChatSessions(self.engine.stores.chat_owners)
        )
        self.offers: OfferService = LocalOffers(self.engine)
        if store == "redis" and self.redis_url:
            self.offers = SharedOffers(config, redis_client(self.redis_url), self.replica_id, counters=self.offer_metrics,
                                       subscriber=Redis.from_url(self.redis_url, decode_responses=True,
                                                                 socket_connect_timeout=2.0, health_check_interval=30),
                                       outage=self.redis_outage, units_client=units_client(self.redis_url))
            logger.info("proactive offers shared through Redis (%s) as replica %s", _without_password(self.redis_url),
                        self.replica_id)
        elif self.redis_url:
            logger.warning(
                "proactive chat sessions are shared through Redis (%s) so several replicas can serve chats; offers and "
                "their state are per replica with store: memory: run one replica, or set store: redis",
                _without_password(self.redis_url),
            )
        self.driver = ProactiveDriver(self.offers, config.driver.tick_seconds)
        self.readers = InsightsReaders.from_config(config.insights, environ)
        self.assistant: Optional[GroundedAssistant] = None
        self._chat_attached = False  # our socketio channel took the chat sessions at start

    # -- lifecycle ------------------------------------------------------------------------

    async def prepare(self, chat: Optional[InputChannel]) -> None:
        """Before the server accepts connections: the chat layer shared through Redis, if set."""
        share = getattr(chat, "share_through_redis", None)  # our socketio channel
        if self.redis_url and share is not None:
            share(self.redis_url)
        await self.chat_sessions.start()
        await self.offers.start()

    def start(self, agent: Optional[Agent], chat: Optional[InputChannel]) -> None:
        """The server is up: actions in-process, the chat channel attached, the assistant built."""
        if self.actions_package and agent is not None:
            InProcessActionEndpoint.install(agent, self.actions_package)
        attach = getattr(chat, "attach", None)  # our socketio channel; Rasa's stock one has none
        if attach is not None:
            attach(self.chat_sessions, self.identity, self._on_chat_message)
            self._chat_attached = True
        self.assistant = GroundedAssistant(
            self.engine,
            self.llm,
            read=lambda user_id, read: self.offers.run(user_id, read, now=time.time()),
            summaries=isinstance(self.offers, LocalOffers),
            users_of=self.chat_sessions.user_of,
            user_id_key=getattr(chat, "user_id_key", "userId"),
            trust_metadata=not self.identity.required,
        )
        grounded.install(self.assistant)  # for the in-process reply action
        logger.info("proactive LLM: %s", self.llm.describe())
        tune_gc_for_serving()  # full GCs over Rasa's heap and the session store stalled the loop (BENCHMARKS.md)

    async def stop(self) -> None:
        await self.offers.close()
        await self.chat_sessions.close()
        if self.assistant is not None:
            grounded.install(None)
            await self.assistant.aclose()

    # -- operations -------------------------------------------------------------------------

    async def capture(self, body: bytes, *, content_type: str, ip: str, path: str, received_at: float) -> Dict[str, Any]:
        """One capture request from posthog-js (or a PostHog SDK): admitted, decoded, ingested."""
        self.ingest_guard.admit_request(ip, received_at)
        check_size(body, self.max_body_bytes)
        batch = decode_capture_body(body, content_type=content_type, max_bytes=self.max_body_bytes)
        self.ingest_guard.admit_project(batch, ip, received_at)
        result = normalise_batch(batch, received_at=received_at, skew=self.engine.stores.clock_skew)
        return await self._ingest(result, events=len(batch.events), ip=ip, path=path, received_at=received_at)

    async def push(self, source: str, body: bytes, headers: Mapping[str, str], *, ip: str, path: str,
             received_at: float) -> Dict[str, Any]:
        """One push from a destination or connector (``addons.offers.sources``), proved by its
        secret instead of a project key."""
        if source not in SECRET_ENV:
            raise SourceNotConfigured(f"no event source {source[:40]!r}; the sources are {sorted(SECRET_ENV)}")
        auth = self.sources.get(source)
        if auth is None:
            raise SourceNotConfigured(f"the {source} source is off: set {SECRET_ENV[source]} (or sources.{source}.secret)")
        check_size(body, self.max_body_bytes)
        try:
            auth.check(headers, body)
        except BadSourceSecret:
            # Only unproven senders count against the per-IP limit: a destination posts one
            # event per request from a few IPs, far above what one browser sends.
            self.ingest_guard.admit_request(ip, received_at)
            raise
        try:
            payload = loads_json(body)
        except ValueError as e:
            raise IngestError(f"body is not JSON: {e}") from None
        if source == AUTOPLAY_CONNECTOR:
            result = connector_batch(payload, received_at=received_at)
            return await self._ingest(result, events=len(result.actions) + len(result.rejected) + result.skipped,
                                      ip=ip, path=path, received_at=received_at)
        batch = posthog_webhook_batch(payload) if source == POSTHOG_WEBHOOK else autoplay_destination_batch(payload)
        result = normalise_batch(batch, received_at=received_at)
        return await self._ingest(result, events=len(batch.events), ip=ip, path=path, received_at=received_at)

    async def _ingest(self, result: NormalisedBatch, *, events: int, ip: str, path: str, received_at: float) -> Dict[str, Any]:
        self.ingest_guard.admit_events(result.actions, ip, received_at)
        for rejected in result.rejected:
            logger.warning("rejected event %d of %s: %s", rejected.index, path, rejected.reason)
        if events and not result.actions and result.rejected and not result.skipped:
            raise IngestError(f"no event accepted: {result.rejected[0].reason}")
        await self.offers.ingest(result, now=received_at)
        return {
            "status": 1,
            "accepted": len(result.actions),
            "skipped": result.skipped,
            "rejected": [{"index": r.index, "reason": r.reason} for r in result.rejected],
        }

    async def open_chat(
        self, agent: Optional[Agent], chat: Optional[InputChannel], *,
        sender_id: str, user_id: str, trigger_id: Optional[str], question: str, offer_id: Optional[str] = None,
    ) -> bool:
        """"Open chat": the question into the user's open chat (``sender_id`` is the widget's
        chat session), then its follow-up. Returns whether a follow-up was sent."""
        output = chat.get_output_channel() if chat else None
        if agent is None or output is None:
            raise ChatNotReady("no socketio channel is configured in credentials.yml")
        if self._chat_attached:
            await self.chat_sessions.claim_for(sender_id, user_id)
        clicked_at = time.time()
        await self.offers.run(user_id, lambda engine: engine.engage_chat(user_id, trigger_id), now=clicked_at)
        sent = await send_proactive_question(
            agent,
            output,
            FollowUpRequest(sender_id, user_id, trigger_id, question),
            self.assistant.follow_up if self.assistant else None,
            min_gap_s=self.config.chat.follow_up_gap_s,
        )
        if offer_id is not None:
            follow_up = sent.follow_up

            def record(engine: ProactiveEngine) -> None:
                _note(lambda: engine.journal.first_bubble(user_id, offer_id, clicked_at=clicked_at, now=sent.question_sent_at))
                if follow_up is not None:
                    _note(lambda: engine.journal.follow_up(user_id, offer_id, follow_up.source))

            try:
                await self.offers.run(user_id, record, now=time.time())
            except StoreUnavailable as e:  # the chat worked; only its insight is lost
                logger.warning("proactive insight not recorded: %s", e)
        return sent.follow_up is not None

    # -- the tour's life (the gate's transitions, and the offer's insights) ------------------

    async def start_tour(self, user_id: str, tour_id: str, offer_id: Optional[str]) -> TourStart:
        now = time.time()

        def start(engine: ProactiveEngine) -> TourStart:
            started = engine.start_tour(user_id, tour_id)
            if offer_id is not None:
                _note(lambda: engine.journal.report(user_id, offer_id, "show_me", None, now=now))
            return started

        return await self.offers.run(user_id, start, now=now)

    async def tour_step(self, user_id: str, offer_id: Optional[str], step: object) -> Dict[str, str]:
        number = step_number(step) if offer_id is not None else 0  # a bad step refused before anything moves

        def record(engine: ProactiveEngine) -> Dict[str, str]:
            tour = engine.record_tour_step(user_id)
            if offer_id is not None:
                _note(lambda: engine.journal.tour_step(user_id, offer_id, number))
            return tour

        return await self.offers.run(user_id, record, now=time.time())

    async def end_tour(self, user_id: str, offer_id: Optional[str], outcome: object, reason: object,
                       step: object) -> Dict[str, str]:
        if offer_id is not None:
            tour_end(outcome, reason, step)  # a bad report refused before the tour ends

        def end(engine: ProactiveEngine) -> Dict[str, str]:
            tour = engine.end_tour(user_id)
            if offer_id is not None:
                _note(lambda: engine.journal.tour_ended(user_id, offer_id, outcome, reason, step))
            return tour

        return await self.offers.run(user_id, end, now=time.time())

    # -- toast streams and diagnostics ----------------------------------------------------------

    async def open_stream(self, user_id: str, last_event_id: Optional[str]) -> Subscription:
        return await self.offers.open_stream(user_id, last_event_id, now=time.time())

    async def close_stream(self, subscription: Subscription) -> None:
        await self.offers.close_stream(subscription)

    async def debug(self, user_id: str) -> Dict[str, Any]:
        now = time.time()
        return await self.offers.run(user_id, lambda engine: engine.debug(user_id, now=now), now=now)

    # -- measuring offers ------------------------------------------------------------------------

    async def offer_event(self, user_id: str, offer_id: str, event: object, reason: object) -> bool:
        """What the browser saw of an offer: shown, or its outcome. Returns whether it was new."""
        if not isinstance(event, str) or (reason is not None and not isinstance(reason, str)):
            raise BadOfferEvent("event (and reason, when given) must be strings")
        now = time.time()
        return await self.offers.run(user_id, lambda engine: engine.journal.report(user_id, offer_id, event, reason, now=now),
                                     now=now)

    def metrics(self, authorization: Optional[str]) -> Tuple[bytes, str]:
        self.readers.check(authorization)
        return self.offer_metrics.render()

    async def funnel(self, authorization: Optional[str], *, first_day: Optional[str], last_day: Optional[str],
                     trigger_id: Optional[str]) -> Dict[str, Any]:
        self.readers.check(authorization)
        start, end = period(first_day, last_day, now=time.time())
        return funnel(self.config, await self.offers.totals(start, end), start, end, trigger_id)

    def health(self, agent: Optional[Agent]) -> Dict[str, Any]:
        return {
            "status": "ok",
            "agent_ready": bool(agent and agent.is_ready()),
            "driver": {"running": self.driver.running, "ticks": self.driver.ticks},
            **self.offers.stats(),
            "chat_sessions": self.chat_sessions.open_count() if self._chat_attached else None,
            # Still 200 while Redis is away: the replica is alive, and every replica shares the one
            # Redis (a failing check would take them all out of the balancer).
            "redis": ("unreachable" if self.redis_outage.down else "ok") if self.redis_url else None,
        }

    async def _on_chat_message(self, *, user_id: str, sender_id: str) -> None:
        def record(engine: ProactiveEngine) -> bool:
            engine.journal.replied(user_id)
            return engine.on_chat_message(user_id)

        if await self.offers.run(user_id, record, now=time.time()):
            logger.info("proactive chat message: user=%s sender=%s; offers paused", user_id, sender_id)


def _note(record: Callable[[], object]) -> None:
    """An insight about an offer the user acted on: never worth failing the user's request."""
    try:
        record()
    except (UnknownOffer, BadOfferEvent) as e:
        logger.warning("proactive insight not recorded: %s", e)


def _without_password(url: str) -> str:
    """A Redis URL fit for a log line: no password, in the user part or the query."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    if "@" in parts.netloc:
        netloc = f"{parts.username or ''}:***@{netloc}"
    query = "&".join(
        f"{k}=***" if k.lower() == "password" else f"{k}={v}" for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))

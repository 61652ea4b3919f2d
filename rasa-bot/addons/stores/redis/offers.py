"""``OfferService`` shared by several replicas through Redis (docs/design/cluster.md): every
operation on a user is a unit of work on that user's state (``units``), offers reach the
user's streams on any replica (``streams``), and the periodic pass takes the users that are due
from the shared due set, each user on one replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import date, timedelta
from typing import Callable, Dict, List, Optional, TypeVar

from redis.asyncio import Redis

from addons.config import ProactiveConfig
from addons.errors import StoreUnavailable
from addons.insights.metrics import OfferCounters
from addons.offers.delivery import Subscription
from addons.offers.engine import ProactiveEngine, TickReport
from addons.offers.ingest import NormalisedBatch, PersonName, TrackedAction
from addons.offers.offer import Offer
from addons.stores.memory import InMemoryOfferStore
from addons.stores.redis.outage import RedisOutage
from addons.stores.redis.streams import SharedStreams
from addons.stores.redis.units import UserUnits
from addons.stores.redis.user_states import RedisUserStates

logger = logging.getLogger(__name__)

T = TypeVar("T")
BEAT_S = 5.0
DUE_PER_TICK = 1000  # users one replica takes per pass; the rest wait for the next pass (on any replica)
OTHERS_AFTER_TICKS = 2  # a live replica's due users are its own to claim for this many ticks


def session_ttl_s(config: ProactiveConfig) -> float:
    """How long a user's keys outlive their last commit, unless the commit asks for longer: a
    session is evicted ``activity.idle_session_s`` after its last event, and an offer waits
    ``delivery.pending_ttl_s`` for a tab (a minute more, for the periodic pass that evicts)."""
    return config.activity.idle_session_s + config.delivery.pending_ttl_s + 60


class SharedOffers:
    def __init__(self, config: ProactiveConfig, client: "Redis[str]", replica_id: str, *, counters: OfferCounters,
                 subscriber: "Optional[Redis[str]]" = None, outage: Optional[RedisOutage] = None,
                 units_client: "Optional[Redis[str]]" = None) -> None:
        """``outage``: the replica's one record of Redis outages (logged once each), shared
        with its other Redis parts. ``units_client``: the units' own connection
        (``client.units_client``; by default they share ``client``), closed with this."""
        self._config = config
        outage = outage or RedisOutage()

        def states(redis: "Redis[str]") -> RedisUserStates:
            return RedisUserStates(redis, ttl_s=session_ttl_s(config),
                                   insights_ttl_s=config.insights.retention_days * 86_400, outage=outage,
                                   replica_id=replica_id)

        self._states = states(client)
        self._units_client = units_client
        self._units = UserUnits(config, states(units_client or client), counters=counters)
        self.streams = SharedStreams(client, replica_id, subscriber=subscriber, outage=outage)
        self.streams.on_pending = self._take_pending
        self.streams.on_resync = self._resync
        self._beat: Optional["asyncio.Task[None]"] = None

    async def start(self) -> None:
        await self.streams.start()
        if self._beat is None:
            self._beat = asyncio.get_running_loop().create_task(self._beat_loop(), name="proactive_streams_heartbeat")

    async def close(self) -> None:
        self.streams.close_all()
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        await self._units.close()
        await self.streams.close()
        if self._units_client is not None:
            await self._units_client.close()

    async def run(self, user_id: str, operation: Callable[[ProactiveEngine], T], *, now: float) -> T:
        unit = await self._units.run(user_id, operation, now=now)  # its commit published the offers
        return unit.value

    async def ingest(self, batch: NormalisedBatch, *, now: float) -> None:
        """Each user's part of the batch as its own unit of work."""
        users = {tracked.user_id for tracked in batch.actions} | {person.user_id for person in batch.people}
        if len(users) == 1:  # the usual batch: one browser's events
            [user_id] = users
            await self.run(user_id, lambda engine: engine.ingest(batch, now=now), now=now)
            return
        actions: Dict[str, List[TrackedAction]] = defaultdict(list)
        for tracked in batch.actions:
            actions[tracked.user_id].append(tracked)
        people: Dict[str, List[PersonName]] = defaultdict(list)
        for person in batch.people:
            people[person.user_id].append(person)
        for user_id in sorted(set(actions) | set(people)):
            part = NormalisedBatch(actions=tuple(actions[user_id]), skipped=0, rejected=(), people=tuple(people[user_id]))
            await self.run(user_id, lambda engine: engine.ingest(part, now=now), now=now)

    async def open_stream(self, user_id: str, last_event_id: Optional[str], *, now: float) -> Subscription:
        # Subscribed first: an offer published from here on reaches it through the fan-out,
        # one published before is in the replay; one in both is given once.
        subscription = await self.streams.subscribe(user_id)
        try:
            unit = await self._units.run(
                user_id, lambda engine: engine.subscribe(user_id, last_event_id=last_event_id, now=now).drain(),
                now=now, min_streams=1,
            )
        except BaseException:
            await self.streams.unsubscribe(subscription)
            raise
        # The replay, and the pending offers it took, straight to this stream (the fan-out
        # brings them too; a stream takes an offer once).
        self.streams.give(subscription, [*unit.value, *unit.published])
        return subscription

    async def _take_pending(self, user_id: str) -> None:
        """An offer waits for the user and this replica holds one of their streams: take it."""
        now = time.time()
        try:
            await self.run(user_id, lambda engine: engine.take_pending(user_id, now=now), now=now)
        except StoreUnavailable as e:  # the outage is logged once; the next stream or beat takes it
            logger.debug("pending offer for %s not taken: %s", user_id, e)

    async def _resync(self, user_id: str, since: float) -> None:
        """The fan-out was away: the offers delivered to the user since ``since``, to this
        replica's streams of the user (each stream drops what it already has)."""
        now = time.time()

        def delivered(engine: ProactiveEngine) -> List[Offer]:
            offers = engine.stores.offers
            if not isinstance(offers, InMemoryOfferStore):
                return []
            return [offer for offer, at in offers.export_user(user_id).delivered if at >= since]

        try:
            for offer in await self.run(user_id, delivered, now=now):
                self.streams.deliver_locally(offer)
        except StoreUnavailable as e:  # the outage is logged once; the fan-out catches up when it is back
            logger.debug("streams of %s not caught up: %s", user_id, e)

    async def close_stream(self, subscription: Subscription) -> None:
        try:
            await self.streams.unsubscribe(subscription)
        except StoreUnavailable as e:  # the next heartbeat writes the true count
            logger.debug("toast stream of %s closed while Redis is away: %s", subscription.user_id, e)

    async def tick(self, *, now: float) -> TickReport:
        sessions = offers = failures = evicted = 0
        # Another live replica's due users wait for its own pass, which keeps their state.
        others_after_s = OTHERS_AFTER_TICKS * self._config.driver.tick_seconds
        for user_id in await self._states.claim_due(now, DUE_PER_TICK, others_after_s=others_after_s):
            try:
                report = await self.run(user_id, lambda engine: engine.tick(now=now), now=now)
            except Exception as e:
                failures += 1
                if isinstance(e, StoreUnavailable):  # the outage is logged once, not per user
                    logger.debug("tick of user %s not done: %s; due again at the next pass", user_id, e)
                else:
                    logger.exception("tick failed for user %s; due again at the next pass", user_id)
                try:
                    await self._states.reschedule(user_id, now + self._config.driver.tick_seconds)
                except StoreUnavailable:
                    pass  # Redis is away: the user's next unit of work plans it again
                continue
            sessions += report.sessions
            offers += report.offers
            failures += report.failures
            evicted += report.evicted
        return TickReport(sessions=sessions, offers=offers, failures=failures, evicted=evicted)

    async def totals(self, first_day: str, last_day: str) -> Dict[str, Dict[str, int]]:
        totals: Dict[str, Dict[str, int]] = {}
        day, end = date.fromisoformat(first_day), date.fromisoformat(last_day)
        while day <= end:
            for trigger in self._config.triggers:
                for key, count in (await self._states.counts(day.isoformat(), trigger.id)).items():
                    counts = totals.setdefault(trigger.id, {})
                    counts[key] = counts.get(key, 0) + count
            day += timedelta(days=1)
        return totals

    def stats(self) -> Dict[str, Optional[int]]:
        return {"sessions": None, "subscribers": self.streams.local_count(), "pending_offers": None}

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(BEAT_S)
            try:
                await self.streams.beat()
            except StoreUnavailable as e:  # the outage is logged once; the next beat heals
                logger.debug("toast streams' heartbeat to Redis failed: %s", e)

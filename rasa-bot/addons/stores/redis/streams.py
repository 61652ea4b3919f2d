"""Toast streams across replicas (docs/design/cluster.md, "Delivery"): this replica's open
streams, how many each user has open on every replica (presence), and offers fanned out
through Redis pub/sub so the replica that made an offer need not be the one holding the stream.

Presence is ``proactive:streams:{u:<user>}``, a hash of replica id → open streams. A replica's
count only counts while its heartbeat key ``proactive:replica:<id>`` exists (the chat layer's
heartbeat sets it, ``addons.rasa.shared_chat_sessions``), so the streams of a replica that died
stop counting when its key expires.

A stream may get an offer both from the replay it read when it opened and from pub/sub (the
offer was published in between): each stream drops an offer id it has already been given.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable, Coroutine, Dict, Optional, Sequence, Set

from redis.asyncio import Redis
from redis.exceptions import RedisError

from addons.bounded import BoundedMap
from addons.offers.delivery import CLOSED, Subscription
from addons.offers.offer import Offer
from addons.stores.redis.outage import RedisOutage
from addons.stores.redis.keys import CHANNEL, presence_key

logger = logging.getLogger(__name__)

PRESENCE_TTL_S = 86_400  # a user whose streams all closed long ago leaves no key behind
RECONNECT_S = 1.0
PART = "the toast streams"  # in log lines and 503 messages


class _Stream:
    """A local subscription and the offer ids it has been given."""

    def __init__(self, subscription: Subscription, opened_at: float) -> None:
        self.subscription = subscription
        self.opened_at = opened_at
        self.given: BoundedMap[str, None] = BoundedMap(64)

    def give(self, offer: Offer) -> bool:
        if offer.offer_id in self.given:
            return False
        self.given.touch(offer.offer_id, None)
        self.subscription.put(offer)
        return True


class SharedStreams:
    def __init__(self, client: "Redis[str]", replica_id: str, *, subscriber: "Optional[Redis[str]]" = None,
                 queue_size: int = 16, outage: Optional[RedisOutage] = None) -> None:
        """``subscriber``: the client the fan-out listens with. It must have no read timeout (it
        waits on a quiet channel); ``client``'s may have one. By default ``client`` itself."""
        self._redis = client
        self._outage = outage or RedisOutage()
        self._subscriber = subscriber or client
        self.replica_id = replica_id
        self._queue_size = queue_size
        self._local: Dict[str, Set[_Stream]] = {}
        self._by_subscription: Dict[int, _Stream] = {}
        self._listener: Optional["asyncio.Task[None]"] = None
        self._recount: Set[str] = set()  # users whose presence count a failed write left wrong
        self._tasks: Set["asyncio.Task[None]"] = set()
        # What to do when an offer waits for a user this replica holds a stream of.
        self.on_pending: Optional[Callable[[str], Coroutine[Any, Any, None]]] = None
        # What to do after the fan-out was away (a Redis restart): offers delivered to the user
        # since the given time may have been published while nobody here listened.
        self.on_resync: Optional[Callable[[str, float], Coroutine[Any, Any, None]]] = None

    async def start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen(), name="proactive_offer_fanout")

    async def close(self) -> None:
        """Stops the fan-out. The streams' own handlers close them (``close_all`` wakes them);
        this replica's counts stop counting once its heartbeat key is gone."""
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None
        for task in list(self._tasks):
            task.cancel()

    async def subscribe(self, user_id: str, replay: Sequence[Offer] = ()) -> Subscription:
        """A stream opened here; ``replay``: what it missed, given first."""
        opened_at = time.time()
        stream = _Stream(Subscription(user_id, self._queue_size, opened_at=opened_at), opened_at)
        self._local.setdefault(user_id, set()).add(stream)
        self._by_subscription[id(stream.subscription)] = stream
        for offer in replay:
            stream.give(offer)
        try:
            await self._count(user_id, +1)
        except BaseException:  # also cancelled (the client went away): no stream left behind
            await self._forget(stream)
            raise
        return stream.subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        stream = self._by_subscription.get(id(subscription))
        if stream is None:
            return
        await self._forget(stream)
        await self._count(subscription.user_id, -1)

    async def beat(self) -> None:
        """Writes this replica's true stream count for every user it holds streams of, and for
        those whose count a failed write left wrong: presence heals with the replica's
        heartbeat, also after a Redis restart that lost it."""
        counts = {user_id: self.local_count(user_id) for user_id in set(self._local) | self._recount}
        if not counts:
            return
        with self._outage.call(PART):
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id, count in counts.items():
                    if count:
                        pipe.hset(presence_key(user_id), self.replica_id, count)
                        pipe.expire(presence_key(user_id), PRESENCE_TTL_S)
                    else:
                        pipe.hdel(presence_key(user_id), self.replica_id)
                await pipe.execute()
        self._recount.difference_update(counts)
        # A stream that opened or closed while the beat was on its way: Redis may have applied
        # its increment before the beat's older count (a beat of thousands of users is long,
        # and Redis serves other connections in between). The next beat writes it again.
        self._recount.update(user_id for user_id, count in counts.items() if self.local_count(user_id) != count)

    async def _forget(self, stream: _Stream) -> None:
        self._by_subscription.pop(id(stream.subscription), None)
        user_id = stream.subscription.user_id
        streams = self._local.get(user_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._local[user_id]

    def local_count(self, user_id: Optional[str] = None) -> int:
        if user_id is not None:
            return len(self._local.get(user_id, ()))
        return sum(len(s) for s in self._local.values())

    def give(self, subscription: Subscription, offers: Sequence[Offer]) -> None:
        """Offers for one stream of this replica (its replay), each once."""
        stream = self._by_subscription.get(id(subscription))
        if stream is not None:
            for offer in offers:
                stream.give(offer)

    def close_all(self) -> None:
        """Server shutdown: every local stream ends."""
        for streams in self._local.values():
            for stream in streams:
                stream.subscription.put(CLOSED)

    def deliver_locally(self, offer: Offer) -> int:
        """Give an offer to this replica's streams of its user; how many took it."""
        return sum(stream.give(offer) for stream in list(self._local.get(offer.user_id, ())))

    async def _count(self, user_id: str, delta: int) -> None:
        key = presence_key(user_id)
        try:
            with self._outage.call(PART):
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.hincrby(key, self.replica_id, delta)
                    pipe.expire(key, PRESENCE_TTL_S)
                    await pipe.execute()
        except BaseException:
            # Redis away, the request cancelled mid-write, or an answer that timed out after the
            # write landed: the count may be wrong either way, so the next beat writes the true
            # one (else a closed stream could count forever, and offers go to nobody).
            self._recount.add(user_id)
            raise

    async def _listen(self) -> None:
        """Offers from every replica to this one's streams; reconnects when Redis comes back."""
        lost_at: Optional[float] = None
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                started_at = self._outage.started()
                await pubsub.subscribe(CHANNEL)
                self._outage.answered(started_at)
                if lost_at is not None:  # listening again: what was published meanwhile is read back
                    logger.info("offer fan-out listening again after %.1f s; catching up %d users' streams",
                                time.time() - lost_at, len(self._local))
                    self._resync()
                    lost_at = None
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        data = json.loads(message["data"])
                        if "pending_for" in data:
                            user_id = str(data["pending_for"])
                            if self.local_count(user_id) and self.on_pending is not None:
                                self._spawn(self.on_pending(user_id))
                            continue
                        offer = Offer.from_dict(data)
                    except (ValueError, KeyError, TypeError) as e:
                        logger.warning("ignored a malformed message on %s: %s", CHANNEL, e)
                        continue
                    self.deliver_locally(offer)
            except asyncio.CancelledError:
                await pubsub.close()
                raise
            except Exception as e:  # Redis away, or anything else: the fan-out must not end
                if isinstance(e, RedisError):
                    self._outage.failed("the offer fan-out", e)  # the outage's own line; retried every RECONNECT_S
                elif lost_at is None:
                    logger.exception("offer fan-out failed; restarting it in %g s", RECONNECT_S)
                if lost_at is None:
                    lost_at = time.time()
                try:
                    await pubsub.close()
                except Exception:
                    pass
                await asyncio.sleep(RECONNECT_S)

    def _resync(self) -> None:
        if self.on_resync is None:
            return
        for user_id, streams in list(self._local.items()):
            self._spawn(self.on_resync(user_id, min(stream.opened_at for stream in streams)))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """A background catch-up, kept until done; what fails in it is logged."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("offer fan-out catch-up failed", exc_info=task.exception())

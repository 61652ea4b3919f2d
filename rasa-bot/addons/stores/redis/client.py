"""The Redis client every shared part of a replica talks through (offers, streams, chat sessions)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

MAX_CONNECTIONS = 64
POOL_WAIT_S = 2


class PoolBusy(ConnectionError):
    """Every pooled connection stayed busy for ``POOL_WAIT_S``: this replica is overloaded, Redis
    is not away (not an outage; the request may be retried shortly)."""


class _WaitingPool(BlockingConnectionPool):
    async def get_connection(self, command_name: Any, *keys: Any, **options: Any) -> Connection:
        try:
            connection: Connection = await super().get_connection(command_name, *keys, **options)
        except ConnectionError as e:
            if str(e) == "No connection available.":  # the pool's wait ran out (redis-py says no more)
                raise PoolBusy(f"all {self.max_connections} connections to Redis busy for {self.timeout} s") from None
            raise
        return connection


def redis_client(url: str, *, max_connections: int = MAX_CONNECTIONS) -> "Redis[str]":
    """A client with a bounded pool: a burst (thousands of toast streams opening at once) waits
    for one of ``max_connections`` connections instead of opening a socket each, which would
    run the replica out of file descriptors. A pooled connection that died with a Redis restart
    is retried once on a fresh one, so the first request after a restart succeeds; no call
    waits more than about 2 s for a connection or an answer."""
    pool = _WaitingPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_S, decode_responses=True,
        socket_timeout=2.0, socket_connect_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2), retry_on_error=[ConnectionError, TimeoutError],
    )
    return Redis(connection_pool=pool)

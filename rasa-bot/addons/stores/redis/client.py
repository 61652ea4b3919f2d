"""The Redis client every shared part of a replica talks through (offers, streams, chat sessions)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

MAX_CONNECTIONS = 64


def redis_client(url: str, *, max_connections: int = MAX_CONNECTIONS) -> "Redis[str]":
    """A client with a bounded pool: a burst (thousands of toast streams opening at once) waits
    for one of ``max_connections`` connections instead of opening a socket each, which would
    run the replica out of file descriptors. A pooled connection that died with a Redis restart
    is retried once on a fresh one, so the first request after a restart succeeds; no call
    waits more than about 2 s for a connection or an answer."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=2, decode_responses=True,
        socket_timeout=2.0, socket_connect_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2), retry_on_error=[ConnectionError, TimeoutError],
    )
    return Redis(connection_pool=pool)

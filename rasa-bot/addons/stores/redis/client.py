"""The Redis client every shared part of a replica talks through (offers, streams, chat sessions)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Optional, Type

import async_timeout
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

MAX_CONNECTIONS = 64
POOL_WAIT_S = 2
CALL_TIMEOUT_S = 2.0  # no pooled call waits longer for a write, or for its answer
# A units call carries a whole batch, and its answer can wait behind what this replica's own
# loop has queued (tens of thousands of streams each taking an offer): a Redis that is away,
# not a busy replica, is what ends it.
UNITS_CALL_TIMEOUT_S = 5.0


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
        socket_timeout=CALL_TIMEOUT_S, socket_connect_timeout=CALL_TIMEOUT_S,
        retry=_retry(), retry_on_error=[ConnectionError, TimeoutError],
    )
    return Redis(connection_pool=pool)


def units_client(url: str) -> "Redis[str]":
    """One connection of its own for a replica's units of work (``addons.stores.redis.units``),
    whose one worker sends one call at a time: no pool to take it from and give back (each
    costs a read of the socket), and no socket timeout, which redis-py enforces with a task per
    write and a timer per read. Each call is bounded as a whole instead (``Deadline``), and a
    connection idle for 30 s is checked with a PING first (a balancer or NAT may have dropped
    it)."""
    return Redis.from_url(url, decode_responses=True, single_connection_client=True,
                          socket_connect_timeout=CALL_TIMEOUT_S, health_check_interval=30,
                          retry=_retry(), retry_on_error=[ConnectionError, TimeoutError])


class Deadline:
    """``async with Deadline():`` around one call on a client without a socket timeout: past
    ``seconds`` the call is cancelled (redis-py then drops the connection, half-read) and
    raises redis's ``TimeoutError``, as a socket timeout would have."""

    def __init__(self, seconds: float = UNITS_CALL_TIMEOUT_S) -> None:
        self._timeout = async_timeout.timeout(seconds)
        self._seconds = seconds

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                        traceback: Optional[TracebackType]) -> None:
        try:
            await self._timeout.__aexit__(kind, error, traceback)
        except asyncio.TimeoutError:
            raise TimeoutError(f"Redis did not answer within {self._seconds:g} s") from None


def _retry() -> Retry:
    """A call whose connection died with a Redis restart is tried again on a fresh one."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)

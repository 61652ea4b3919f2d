"""A replica's Redis outages, logged as one line when each starts and one when it ends.

Every part of a replica that talks to Redis (user states, toast streams and their fan-out,
chat sessions) reports to the replica's one ``RedisOutage``: while Redis is away, requests
answer 503 without a line each, and the log says when it went, when it came back and what
failed meanwhile.

An outage ends with the first success of a call that started after it began: a call already
in flight when Redis went away (and answered just before) does not end it.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from redis.exceptions import RedisError

from addons.errors import StoreUnavailable
from addons.stores.redis.client import PoolBusy

logger = logging.getLogger(__name__)


class RedisOutage:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._down_since: Optional[float] = None
        self._failed_calls = 0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def started(self) -> float:
        """When a call starts: pass it to ``answered`` once the call succeeds."""
        return self._clock()

    def failed(self, part: str, error: BaseException) -> None:
        self._failed_calls += 1
        if self._down_since is None:
            self._down_since = self._clock()
            self._failed_calls = 1
            logger.warning("Redis unreachable (%s: %s); the copilot answers 503 until it is back", part, error)

    def answered(self, started_at: float) -> None:
        if self._down_since is not None and started_at >= self._down_since:
            logger.warning("Redis is back after %.1f s unreachable (%d calls failed meanwhile)",
                           self._clock() - self._down_since, self._failed_calls)
            self._down_since = None
            self._failed_calls = 0

    @contextmanager
    def call(self, part: str) -> Iterator[None]:
        """One Redis call of ``part`` ("the user states"…): a ``RedisError`` becomes
        ``StoreUnavailable`` (a 503), and counts toward the outage."""
        started_at = self._clock()
        try:
            yield
        except PoolBusy as e:  # this replica is overloaded, Redis answers: no outage
            logger.debug("%s: %s", part, e)
            raise StoreUnavailable(f"{part}' Redis connections are busy: {e}") from None
        except RedisError as e:
            self.failed(part, e)
            raise StoreUnavailable(f"{part}' Redis did not answer: {e}") from None
        self.answered(started_at)

"""The periodic pass over all tracked sessions, as an asyncio task the server owns."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Optional, Protocol

from addons.errors import StoreUnavailable
from addons.offers.engine import TickReport

logger = logging.getLogger(__name__)


class Ticker(Protocol):
    """What the driver ticks: the offers (``addons.offers.service``), in one process or shared."""

    async def tick(self, *, now: float) -> TickReport:
        ...


class ProactiveDriver:
    """Ticks the offers every ``tick_seconds``; a failing pass is logged and the loop goes on."""

    def __init__(self, ticker: Ticker, tick_seconds: float) -> None:
        self.ticker = ticker
        self.tick_seconds = tick_seconds
        self.ticks = 0
        self.last_tick_at: Optional[float] = None
        self.running = False

    async def run(self) -> None:
        self.running = True
        logger.info("proactive driver started: tick every %g s", self.tick_seconds)
        try:
            while True:
                await asyncio.sleep(self.tick_seconds)
                await self.tick_once()
        except asyncio.CancelledError:
            logger.info("proactive driver stopped after %d ticks", self.ticks)
            raise
        finally:
            self.running = False

    async def tick_once(self) -> None:
        try:
            report = await self.ticker.tick(now=time.time())
        except StoreUnavailable as e:  # the store logs its outage once; the next tick tries again
            logger.debug("proactive driver tick skipped: %s", e)
            return
        except Exception:
            logger.exception("proactive driver tick failed; next tick in %g s", self.tick_seconds)
            return
        finally:
            self.ticks += 1
            self.last_tick_at = time.time()
        if report.failures or report.offers or report.evicted:
            logger.info(
                "proactive driver tick: sessions=%d offers=%d failures=%d evicted=%d",
                report.sessions, report.offers, report.failures, report.evicted,
            )


# (young, middle, old): the young generation is collected after 20,000 new objects instead of
# Python's 700. At 700 it ran every few requests and promoted the objects of requests still
# in flight; those promotions are what set off full collections over the whole session store
# (40-100 ms each, the p99 of event → toast under load; BENCHMARKS.md).
GC_THRESHOLDS = (20_000, 20, 10)


def tune_gc_for_serving() -> None:
    """Keep the garbage collector's pauses short in a long-running `rasa run` (called once by
    the channel when the server is up; process-wide, so never in tests).

    A loaded `rasa run` holds millions of long-lived objects (TensorFlow, the model, Rasa
    itself). Each full collection walked all of them and stopped the event loop for
    300–450 ms under ingest load (seen with a gc callback; BENCHMARKS.md). ``gc.freeze()``
    moves them to a generation the collector never scans; objects created afterwards
    (sessions, offers) are collected as before, with a larger young generation.
    """
    started = time.perf_counter()
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    logger.info("proactive driver: froze %d start-up objects out of GC scans in %.0f ms; gc thresholds %s",
                gc.get_freeze_count(), (time.perf_counter() - started) * 1000, GC_THRESHOLDS)

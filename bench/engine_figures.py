"""Engine-level figures, in-process against the engine classes (addons/ has no Sanic).

* tick cost at 1k / 10k / 50k active sessions, beside the tutorial's rebuild-every-context
  pass (``baseline.py``) over the same stored data, in the same process;
* memory per session: RSS growth for 100k sessions × 20 events, and what is left after
  the idle-eviction window;
* the hub's publish of one offer to each of 10k subscribers;
* ingest and tick with 5 triggers of mixed kinds beside the one reference trigger.

Run alone: ``python -m bench.engine_figures tick|memory|hub|triggers``.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from dataclasses import replace
from typing import Dict, List

from addons.config import (
    AbsenceTriggerConfig, ActionMatch, DwellTriggerConfig, RepeatedActionTriggerConfig, SequenceTriggerConfig,
    load_config,
)
from addons.offers.delivery import DeliveryHub
from addons.offers.offer import Offer, TourOffer
from addons.stores.memory import InMemoryOfferStore
from addons.offers.engine import ProactiveEngine
from addons.offers.ingest import CaptureBatch, normalise_batch

from bench.activity import one_more, session_events
from bench.baseline import rebuild_all_contexts_tick
from bench.common import ROOT, Figure, Summary, release_memory, rss_bytes, setup_logging, sized

logger = logging.getLogger("bench.engine")

PROACTIVE_YML = ROOT / "rasa-bot" / "proactive.yml"
EPOCH = 1_790_000_000.0  # a fixed "now" for the simulated clock: runs are comparable


def new_engine() -> ProactiveEngine:
    config = load_config(PROACTIVE_YML)
    return ProactiveEngine(config, clock=lambda: EPOCH)


def populate(engine: ProactiveEngine, sessions: int, events_per_session: int, *, now: float, rng: random.Random) -> None:
    """Each session's events as one posthog-js request (with ``sent_at``), ingested at ``now``."""
    for i in range(sessions):
        user = f"u{i}"
        events = session_events(user, f"s{i}", count=events_per_session, end=now - rng.uniform(0, 60), rng=rng)
        batch = normalise_batch(CaptureBatch(events=tuple(events), sent_at=now), received_at=now, skew=engine.stores.clock_skew)
        engine.ingest(batch, now=now)


def tick_figures() -> List[Figure]:
    """Tick cost per size, engine vs baseline, samples interleaved in one process."""
    figures = []
    tick_s = 5.0
    for size in sized((1_000, 10_000, 50_000), (1_000, 10_000)):
        rng = random.Random(size)
        engine = new_engine()
        now = EPOCH
        populate(engine, size, 20, now=now, rng=rng)
        samples = sized(20 if size <= 10_000 else 8, 5)
        engine_ms: List[float] = []
        baseline_ms: List[float] = []
        for _ in range(samples + 1):  # the first pass of each warms up and is dropped
            now += tick_s
            # 10% of the sessions did one more thing since the last tick.
            for i in rng.sample(range(size), size // 10):
                event = one_more(f"u{i}", f"s{i}", at=now - rng.uniform(0, tick_s), rng=rng)
                engine.ingest(normalise_batch(CaptureBatch(events=(event,), sent_at=now), received_at=now,
                                              skew=engine.stores.clock_skew), now=now)
            started = time.perf_counter()
            engine.tick(now=now)
            engine_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            rebuild_all_contexts_tick(engine, now)
            baseline_ms.append((time.perf_counter() - started) * 1000)
        engine_ms, baseline_ms = engine_ms[1:], baseline_ms[1:]
        ours, base = Summary.of(engine_ms), Summary.of(baseline_ms)
        logger.info("tick at %d sessions: engine p50 %.2f ms p99 %.2f ms; baseline p50 %.1f ms", size, ours.p50, ours.p99, base.p50)
        label = f"{size // 1000}k"
        figures.append(Figure(
            id=f"tick.{label}.p50_ms", label=f"tick cost, {label} sessions (median)", value=ours.p50, unit="ms",
            baseline=base.p50, baseline_label="rebuild all contexts", samples=ours.n,
            target="≤ 20 ms" if size == 10_000 else "", met=(ours.p50 <= 20.0) if size == 10_000 else None,
            detail={"engine": ours.__dict__, "baseline": base.__dict__},
        ))
        figures.append(Figure(
            id=f"tick.{label}.p99_ms", label=f"tick cost, {label} sessions (p99)", value=ours.p99, unit="ms",
            baseline=base.p99, baseline_label="rebuild all contexts", samples=ours.n,
            target="≤ 20 ms" if size == 10_000 else "", met=(ours.p99 <= 20.0) if size == 10_000 else None,
        ))
        del engine
        release_memory()
    return figures


def memory_figures() -> List[Figure]:
    """RSS growth for N sessions × 20 events, then after the idle-eviction window."""
    sessions = sized(100_000, 10_000)
    events_per_session = 20
    rng = random.Random(7)
    engine = new_engine()
    populate(engine, 10, events_per_session, now=EPOCH, rng=rng)  # warm every code path first
    engine.tick(now=EPOCH + engine.config.activity.idle_session_s + 1)
    release_memory()
    before = rss_bytes()
    started = time.perf_counter()
    populate(engine, sessions, events_per_session, now=EPOCH, rng=rng)
    elapsed = time.perf_counter() - started
    release_memory()
    loaded = rss_bytes()
    tracked = engine.activity.session_count()
    per_session = (loaded - before) / sessions
    logger.info("memory: %d sessions in %.1f s, %.0f B/session", tracked, elapsed, per_session)
    report = engine.tick(now=EPOCH + engine.config.activity.idle_session_s + 1)
    release_memory()
    after = rss_bytes()
    return [
        Figure(
            id="memory.per_session_bytes", label=f"memory per session ({sessions // 1000}k × {events_per_session} events)",
            value=per_session, unit="B", samples=sessions,
            detail={"rss_before_mb": before / 2**20, "rss_loaded_mb": loaded / 2**20, "sessions": tracked,
                    "per_action_bytes": per_session / events_per_session, "ingest_s": elapsed},
        ),
        Figure(
            id="memory.after_eviction_mb", label="RSS left after the idle-eviction window", value=(after - before) / 2**20,
            unit="MB", samples=sessions,
            detail={"evicted": report.evicted, "sessions_left": engine.activity.session_count(),
                    "gate_states_left": sum(1 for _ in engine.gate.store.session_ids()),
                    "rss_after_mb": after / 2**20},
        ),
    ]


def hub_figures() -> List[Figure]:
    """In-process publish of one offer to each of N subscribers (no HTTP: the hub's own cost)."""
    import asyncio

    streams = sized(10_000, 1_000)

    async def measure() -> Figure:
        hub = DeliveryHub(InMemoryOfferStore())
        release_memory()
        before = rss_bytes()
        subscriptions = [hub.subscribe(f"u{i}") for i in range(streams)]
        release_memory()
        per_subscription = (rss_bytes() - before) / streams
        offers = [Offer(f"o{i}", f"u{i}", f"s{i}", "bulk_edit_opportunity", "body", (TourOffer("t", "f", "l"),), EPOCH)
                  for i in range(streams)]
        started = time.perf_counter()
        delivered = sum(hub.publish(offer) for offer in offers)
        elapsed_ms = (time.perf_counter() - started) * 1000
        for subscription in subscriptions:
            hub.unsubscribe(subscription)
        return Figure(
            id="hub.publish_all_ms", label=f"hub publish, one offer to each of {streams // 1000}k subscribers",
            value=elapsed_ms, unit="ms", samples=streams,
            detail={"delivered": delivered, "bytes_per_subscription": per_subscription,
                    "left_subscribed": hub.subscriber_count()},
        )

    return [asyncio.run(measure())]


# Four more triggers, one of each declarative kind besides the reference's, for the
# "5 triggers of mixed kinds" figures: each is indexed, so cost should barely grow.
MORE_TRIGGERS = (
    SequenceTriggerConfig(id="edit_then_save", first=ActionMatch(label=("edit",)),
                          then=ActionMatch(label=("save changes",), page="/projects"), within_s=60.0,
                          not_between=ActionMatch(label=("cancel",)), body="Edit then save?"),
    DwellTriggerConfig(id="lingering", page="/projects/:id", min_s=90.0, max_actions=2, body="Looking for something?"),
    AbsenceTriggerConfig(id="edit_unsaved", did=ActionMatch(label=("edit",)), then_not=ActionMatch(label=("save changes",)),
                         within_s=300.0, body="Forgot to save?"),
    RepeatedActionTriggerConfig(id="settings_resave", page="/settings/**", action_hints=("save",), discovered_hints=(),
                                min_count=4, window_s=120.0, body="Saving settings one at a time?"),
)


def trigger_figures() -> List[Figure]:
    """Ingest and tick with 5 triggers of mixed kinds, beside the one reference trigger, on
    the same generated activity, samples interleaved in one process."""
    config = load_config(PROACTIVE_YML)
    configs = {"single": config, "mixed": replace(config, triggers=(*config.triggers, *MORE_TRIGGERS))}
    size = sized(10_000, 2_000)
    engines = {name: ProactiveEngine(c, clock=lambda: EPOCH) for name, c in configs.items()}
    ingest_us: Dict[str, List[float]] = {name: [] for name in engines}
    tick_ms: Dict[str, List[float]] = {name: [] for name in engines}
    for name, engine in engines.items():
        started = time.perf_counter()
        populate(engine, size, 20, now=EPOCH, rng=random.Random(size))
        ingest_us[name].append((time.perf_counter() - started) * 1e6 / (size * 20))
    now = EPOCH
    for _ in range(sized(20, 5) + 1):  # the first pass warms up and is dropped
        now += 5.0
        rng = random.Random(int(now))
        events = [one_more(f"u{i}", f"s{i}", at=now - rng.uniform(0, 5.0), rng=rng) for i in rng.sample(range(size), size // 10)]
        for name, engine in engines.items():
            started = time.perf_counter()
            for event in events:
                engine.ingest(normalise_batch(CaptureBatch(events=(event,), sent_at=now), received_at=now,
                                              skew=engine.stores.clock_skew), now=now)
            ingest_us[name].append((time.perf_counter() - started) * 1e6 / len(events))
            started = time.perf_counter()
            engine.tick(now=now)
            tick_ms[name].append((time.perf_counter() - started) * 1000)
    tick = {name: Summary.of(values[1:]) for name, values in tick_ms.items()}
    ingest = {name: Summary.of(values[1:]) for name, values in ingest_us.items()}
    logger.info("5 mixed triggers at %d sessions: tick p50 %.2f ms (1 trigger: %.2f ms); ingest %.1f µs/event (%.1f)",
                size, tick["mixed"].p50, tick["single"].p50, ingest["mixed"].p50, ingest["single"].p50)
    label = f"{size // 1000}k"
    return [
        Figure(id="triggers.tick_p50_ms", label=f"tick, 5 mixed triggers, {label} sessions (median)",
               value=tick["mixed"].p50, unit="ms", baseline=tick["single"].p50, baseline_label="1 trigger",
               samples=tick["mixed"].n, target="ratio ≤ 1.5", met=tick["mixed"].p50 <= 1.5 * tick["single"].p50),
        Figure(id="triggers.ingest_us_per_event", label="ingest per event, 5 mixed triggers (median)",
               value=ingest["mixed"].p50, unit="µs", baseline=ingest["single"].p50, baseline_label="1 trigger",
               samples=ingest["mixed"].n, target="ratio ≤ 1.5", met=ingest["mixed"].p50 <= 1.5 * ingest["single"].p50),
    ]


GROUPS = {"tick": tick_figures, "memory": memory_figures, "hub": hub_figures, "triggers": trigger_figures}


if __name__ == "__main__":
    from bench.common import print_table

    setup_logging()
    chosen = sys.argv[1:] or list(GROUPS)
    figures = [f for name in chosen for f in GROUPS[name]()]
    print_table(figures)

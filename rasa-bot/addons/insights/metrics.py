"""The offers' numbers as Prometheus metrics (``prometheus_client``), for ``GET /metrics``.

Counters are this process's, as Prometheus expects: with several replicas each exposes its
own and queries sum them; a restart starts them at zero, which ``rate()`` handles. The
funnel JSON (``addons.insights.funnel``) reads the stored daily counts instead.
Labels are bounded: trigger ids come from proactive.yml, reasons and sources from fixed
lists, tour steps up to ``MAX_TOUR_STEP``.
"""

from __future__ import annotations

from typing import Callable, Iterable, List, Protocol, Tuple

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from addons.insights.records import DISMISS_REASONS, FOLLOW_UP_SOURCES, STAGES

# Seconds: from a loopback toast (milliseconds) to a tab opened minutes after the offer fired.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class OfferCounters(Protocol):
    """What the journal counts, as it happens: where it goes is the implementation's."""

    def stage(self, trigger_id: str, stage: str) -> None: ...
    def dismissed(self, trigger_id: str, reason: str) -> None: ...
    def tour_step(self, trigger_id: str, step: int) -> None: ...
    def tour_abandoned(self, trigger_id: str, reason: str, step: int) -> None: ...
    def follow_up(self, trigger_id: str, source: str) -> None: ...
    def adoption(self, trigger_id: str, group: str) -> None: ...
    def event_to_toast(self, trigger_id: str, seconds: float) -> None: ...
    def click_to_first_bubble(self, trigger_id: str, seconds: float) -> None: ...


class OfferMetrics:
    """``OfferCounters`` as Prometheus metrics. One registry per runtime (not the global one), so several runtimes in one process
    (tests, benchmarks) never collide."""

    def __init__(self, trigger_ids: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.stages_total = Counter(
            "proactive_offer_stage", "Offers that reached each stage of their life", ["trigger", "stage"],
            registry=self.registry,
        )
        self.dismissed_total = Counter(
            "proactive_offer_dismissed", "Shown offers dismissed, by how", ["trigger", "reason"], registry=self.registry
        )
        self.tour_steps_total = Counter(
            "proactive_tour_step", "Tour steps done after Show me, by step (1-based)", ["trigger", "step"],
            registry=self.registry,
        )
        self.tour_abandoned_total = Counter(
            "proactive_tour_abandoned", "Tours ended before their last step, by reason and step", ["trigger", "reason", "step"],
            registry=self.registry,
        )
        self.follow_ups_total = Counter(
            "proactive_follow_up", "Open-chat follow-ups sent, by who wrote them", ["trigger", "source"],
            registry=self.registry,
        )
        self.adoptions_total = Counter(
            "proactive_adoption", "The faster way taken: after a shown offer, a held-out one, or none (baseline)",
            ["trigger", "group"], registry=self.registry,
        )
        self.event_to_toast_seconds = Histogram(
            "proactive_event_to_toast_seconds",
            "From the request that completed a trigger's evidence to the browser's report that its toast is shown",
            ["trigger"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.click_to_first_bubble_seconds = Histogram(
            "proactive_click_to_first_bubble_seconds",
            "From the Open chat click (as reported) to the question bubble sent into the chat",
            ["trigger"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        for trigger_id in trigger_ids:  # every series exists from the start, at zero
            for stage in STAGES:
                self.stages_total.labels(trigger_id, stage)
            for reason in DISMISS_REASONS:
                self.dismissed_total.labels(trigger_id, reason)
            for source in FOLLOW_UP_SOURCES:
                self.follow_ups_total.labels(trigger_id, source)
            self.event_to_toast_seconds.labels(trigger_id)
            self.click_to_first_bubble_seconds.labels(trigger_id)

    def stage(self, trigger_id: str, stage: str) -> None:
        self.stages_total.labels(trigger_id, stage).inc()

    def dismissed(self, trigger_id: str, reason: str) -> None:
        self.dismissed_total.labels(trigger_id, reason).inc()

    def tour_step(self, trigger_id: str, step: int) -> None:
        self.tour_steps_total.labels(trigger_id, str(step)).inc()

    def tour_abandoned(self, trigger_id: str, reason: str, step: int) -> None:
        self.tour_abandoned_total.labels(trigger_id, reason, str(step)).inc()

    def follow_up(self, trigger_id: str, source: str) -> None:
        self.follow_ups_total.labels(trigger_id, source).inc()

    def adoption(self, trigger_id: str, group: str) -> None:
        self.adoptions_total.labels(trigger_id, group).inc()

    def event_to_toast(self, trigger_id: str, seconds: float) -> None:
        self.event_to_toast_seconds.labels(trigger_id).observe(max(0.0, seconds))

    def click_to_first_bubble(self, trigger_id: str, seconds: float) -> None:
        self.click_to_first_bubble_seconds.labels(trigger_id).observe(max(0.0, seconds))

    def render(self) -> Tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class StagedCounters:
    """``OfferCounters`` held back until ``flush``: a unit of work that may be retried counts
    only once its commit landed (docs/design/cluster.md)."""

    def __init__(self) -> None:
        self._calls: List[Callable[[OfferCounters], None]] = []

    def stage(self, trigger_id: str, stage: str) -> None:
        self._calls.append(lambda c: c.stage(trigger_id, stage))

    def dismissed(self, trigger_id: str, reason: str) -> None:
        self._calls.append(lambda c: c.dismissed(trigger_id, reason))

    def tour_step(self, trigger_id: str, step: int) -> None:
        self._calls.append(lambda c: c.tour_step(trigger_id, step))

    def tour_abandoned(self, trigger_id: str, reason: str, step: int) -> None:
        self._calls.append(lambda c: c.tour_abandoned(trigger_id, reason, step))

    def follow_up(self, trigger_id: str, source: str) -> None:
        self._calls.append(lambda c: c.follow_up(trigger_id, source))

    def adoption(self, trigger_id: str, group: str) -> None:
        self._calls.append(lambda c: c.adoption(trigger_id, group))

    def event_to_toast(self, trigger_id: str, seconds: float) -> None:
        self._calls.append(lambda c: c.event_to_toast(trigger_id, seconds))

    def click_to_first_bubble(self, trigger_id: str, seconds: float) -> None:
        self._calls.append(lambda c: c.click_to_first_bubble(trigger_id, seconds))

    def flush(self, into: OfferCounters) -> None:
        for call in self._calls:
            call(into)
        self._calls.clear()

    def discard(self) -> None:
        self._calls.clear()

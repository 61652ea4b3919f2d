"""The offers' numbers as Prometheus metrics (``prometheus_client``), for ``GET /metrics``.

Counters are this process's, as Prometheus expects: with several replicas each exposes its
own and queries sum them; a restart starts them at zero, which ``rate()`` handles. The
funnel JSON (``addons.insights.funnel``) reads the stored daily counts instead.
Labels are bounded: trigger ids come from proactive.yml, reasons and sources from fixed
lists, tour steps up to ``MAX_TOUR_STEP``.
"""

from __future__ import annotations

from typing import Iterable, Tuple

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from addons.insights.records import DISMISS_REASONS, FOLLOW_UP_SOURCES, STAGES

# Seconds: from a loopback toast (milliseconds) to a tab opened minutes after the offer fired.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class OfferMetrics:
    """One registry per runtime (not the global one), so several runtimes in one process
    (tests, benchmarks) never collide."""

    def __init__(self, trigger_ids: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.stages = Counter(
            "proactive_offer_stage", "Offers that reached each stage of their life", ["trigger", "stage"],
            registry=self.registry,
        )
        self.dismissed = Counter(
            "proactive_offer_dismissed", "Shown offers dismissed, by how", ["trigger", "reason"], registry=self.registry
        )
        self.tour_steps = Counter(
            "proactive_tour_step", "Tour steps done after Show me, by step (1-based)", ["trigger", "step"],
            registry=self.registry,
        )
        self.tour_abandoned = Counter(
            "proactive_tour_abandoned", "Tours ended before their last step, by reason and step", ["trigger", "reason", "step"],
            registry=self.registry,
        )
        self.follow_ups = Counter(
            "proactive_follow_up", "Open-chat follow-ups sent, by who wrote them", ["trigger", "source"],
            registry=self.registry,
        )
        self.adoptions = Counter(
            "proactive_adoption", "The faster way taken: after a shown offer, a held-out one, or none (baseline)",
            ["trigger", "group"], registry=self.registry,
        )
        self.event_to_toast = Histogram(
            "proactive_event_to_toast_seconds",
            "From the request that completed a trigger's evidence to the browser's report that its toast is shown",
            ["trigger"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.click_to_first_bubble = Histogram(
            "proactive_click_to_first_bubble_seconds",
            "From the Open chat click (as reported) to the question bubble sent into the chat",
            ["trigger"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        for trigger_id in trigger_ids:  # every series exists from the start, at zero
            for stage in STAGES:
                self.stages.labels(trigger_id, stage)
            for reason in DISMISS_REASONS:
                self.dismissed.labels(trigger_id, reason)
            for source in FOLLOW_UP_SOURCES:
                self.follow_ups.labels(trigger_id, source)
            self.event_to_toast.labels(trigger_id)
            self.click_to_first_bubble.labels(trigger_id)

    def render(self) -> Tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

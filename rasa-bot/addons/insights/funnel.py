"""The funnel JSON of ``GET /insights/funnel``: per trigger, over a period of cohort days,
every stage's count, the reasons behind them, adoption and its lift, and the latencies."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional, Tuple

from addons.config import ProactiveConfig
from addons.errors import ProactiveError
from addons.insights.lift import METHOD, adoption_lift
from addons.insights.metrics import LATENCY_BUCKETS
from addons.insights.records import (
    BASELINE, DISMISS_REASONS, FOLLOW_UP_SOURCES, HELD_OUT, SHOWN, STAGES, TOUR_END_REASONS,
)

DEFAULT_DAYS = 7
MAX_DAYS = 366


class BadPeriod(ProactiveError, ValueError):
    """``from``/``to`` are not ISO dates, are reversed, or span too long."""


def period(first: Optional[str], last: Optional[str], *, now: float) -> Tuple[str, str]:
    """The inclusive UTC days asked for; by default the last ``DEFAULT_DAYS`` up to today."""
    today = datetime.fromtimestamp(now, tz=timezone.utc).date()
    end = _day(last, "to") if last else today
    try:
        start = _day(first, "from") if first else end - timedelta(days=DEFAULT_DAYS - 1)
    except OverflowError:  # "to" in the first days of year 1
        raise BadPeriod(f"to ({end}) leaves no room for a default period; give from as well") from None
    if start > end:
        raise BadPeriod(f"from ({start}) is after to ({end})")
    if (end - start).days >= MAX_DAYS:
        raise BadPeriod(f"a period spans at most {MAX_DAYS} days, got {(end - start).days + 1}")
    return start.isoformat(), end.isoformat()


def funnel(config: ProactiveConfig, totals: Mapping[str, Mapping[str, int]], first_day: str, last_day: str,
           trigger_id: Optional[str] = None) -> Dict[str, Any]:
    """``totals``: the counts per trigger over the period (``OfferLedgerStore.totals``)."""
    triggers = [t for t in config.triggers if trigger_id is None or t.id == trigger_id]
    if trigger_id is not None and not triggers:
        raise BadPeriod(f"unknown trigger {trigger_id!r}; known: {[t.id for t in config.triggers]}")
    return {
        "from": first_day,
        "to": last_day,
        "triggers": [_trigger_funnel(t.id, t.holdout_pct, totals.get(t.id, {})) for t in triggers],
    }


def _trigger_funnel(trigger_id: str, holdout_pct: float, counts: Mapping[str, int]) -> Dict[str, Any]:
    def group(prefix: str, keys: Any) -> Dict[str, int]:
        return {str(k): counts.get(f"{prefix}:{k}", 0) for k in keys}

    def numbered(prefix: str) -> Dict[str, int]:
        found = {int(k.split(":", 1)[1]): v for k, v in counts.items() if k.startswith(prefix + ":")}
        return {str(k): found[k] for k in sorted(found)}

    stages = group("stage", STAGES)
    shown_offers, held_offers = stages["delivered"], stages["held_out"]
    shown_adopted, held_adopted = counts.get(f"adopted:{SHOWN}", 0), counts.get(f"adopted:{HELD_OUT}", 0)
    lift = adoption_lift(shown_adopted, shown_offers, held_adopted, held_offers)
    return {
        "trigger_id": trigger_id,
        "holdout_pct": holdout_pct,
        "stages": stages,
        "dismissed": group("dismissed", DISMISS_REASONS),
        "tour": {
            "steps": numbered("tour_step"),
            "abandoned": group("tour_abandoned", TOUR_END_REASONS),
            "abandoned_at_step": numbered("abandoned_at_step"),
        },
        "follow_up": group("follow_up", FOLLOW_UP_SOURCES),
        "adoption": {
            SHOWN: _rate(shown_adopted, shown_offers),
            HELD_OUT: _rate(held_adopted, held_offers),
            BASELINE: counts.get(f"adopted:{BASELINE}", 0),
            "lift": {**asdict(lift), "method": METHOD},
        },
        "latency": {
            "event_to_toast_s": _histogram(counts, "event_to_toast"),
            "click_to_first_bubble_s": _histogram(counts, "click_to_first_bubble"),
        },
    }


def _rate(adopted: int, offers: int) -> Dict[str, Any]:
    return {"offers": offers, "adopted": adopted, "rate": adopted / offers if offers else None}


def _histogram(counts: Mapping[str, int], name: str) -> Dict[str, Any]:
    """Cumulative buckets, as Prometheus writes them: [upper bound, count at or below]."""
    buckets: List[List[Any]] = []
    running = 0
    for bound in (*LATENCY_BUCKETS, "+Inf"):
        running += counts.get(f"{name}:{bound}", 0)
        buckets.append([bound, running])
    return {"buckets": buckets, "count": running, "sum": counts.get(f"{name}_sum_us", 0) / 1e6}


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise BadPeriod(f"{name} must be a date, YYYY-MM-DD; got {text[:40]!r}") from None

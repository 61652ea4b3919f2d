"""What every trigger is, and what an indexable one adds.

Every trigger answers two questions about a ``ProactiveTriggerContext``: does it fire
(``evaluate``, the SDK's ``ProactiveTrigger`` protocol) and why or why not (``explain``, for
``/debug`` and the story tests). Triggers are pure: the evaluation time comes from
``context_extra["eval_now"]``, the evidence earlier offers consumed from
``context_extra["consumed_until"]``.

An ``IndexedTrigger`` can also answer from *marks*: for each of its action matchers, the
sorted timestamps of the session's actions it matches, kept up to date as actions arrive
(``addons.offers.index``). Its ``evaluate_marks`` must give exactly what ``explain`` gives;
``tests/unit/test_index.py`` holds every kind to that.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Dict, Generic, List, Mapping, Optional, Protocol, Sequence, Tuple, TypeVar

from autoplay_sdk.core.models import SlimAction
from autoplay_sdk.proactive.triggers import ProactiveTriggerContext, ProactiveTriggerResult

from addons.config import ActionMatch
from addons.urls import action_path, page_matches

EVAL_NOW = "eval_now"  # the context_extra key the SDK's own time-based triggers read
# context_extra key: {trigger_id: time}; an offer of that trigger was shown, and every action
# stamped at or before the time was its evidence (see ``addons.offers.gate``: an offer consumes
# its evidence).
CONSUMED = "consumed_until"
EVIDENCE_UNTIL = "evidence_until"  # result metadata: the newest action that made it fire
NEVER = float("-inf")
LATE = 1.0  # actions stamped up to this far after "now" count (client clocks run a little ahead)

Marks = Tuple[List[float], ...]  # per matcher of a trigger, its actions' timestamps, sorted


@dataclass(frozen=True)
class TriggerVerdict:
    """One trigger's answer for one session, with the condition that decided it."""

    trigger_id: str
    fired: bool
    reason: str
    result: Optional[ProactiveTriggerResult] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"trigger_id": self.trigger_id, "fired": self.fired, "reason": self.reason}


class ExplainingTrigger:
    """An SDK ``ProactiveTrigger`` whose result is the ``result`` of its own verdict."""

    @property
    def trigger_id(self) -> str:
        raise NotImplementedError

    def evaluate(self, ctx: ProactiveTriggerContext) -> Optional[ProactiveTriggerResult]:
        return self.explain(ctx).result

    def explain(self, ctx: ProactiveTriggerContext) -> TriggerVerdict:
        raise NotImplementedError

    def _no(self, reason: str) -> TriggerVerdict:
        return TriggerVerdict(self.trigger_id, False, reason)


class IndexedTrigger(ExplainingTrigger):
    """A trigger the incremental engine evaluates from marks, never by rescanning."""

    mark_count: int  # how many matchers, so how many timestamp lists per session

    def classify(self, action: SlimAction) -> Tuple[bool, ...]:
        """For each of the trigger's matchers, whether the action is marked for it."""
        raise NotImplementedError

    def evaluate_marks(
        self, marks: Marks, latest: Optional[SlimAction], now: float, since: float = NEVER
    ) -> Optional[ProactiveTriggerResult]:
        """``explain(ctx).result`` from the marks, the session's latest action and the time up
        to which an earlier offer consumed the evidence."""
        raise NotImplementedError

    def next_change(self, marks: Marks, now: float) -> float:
        """The earliest time after ``now`` at which, with no new actions, the verdict could
        turn to firing (``inf``: only a new action can)."""
        raise NotImplementedError



class _Identified(Protocol):
    @property
    def id(self) -> str:  # a frozen dataclass's field: read-only
        ...


ConfigT = TypeVar("ConfigT", bound=_Identified)


class DeclaredTrigger(IndexedTrigger, Generic[ConfigT]):
    """A trigger of one of proactive.yml's declarative kinds, built from its config."""

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    @property
    def trigger_id(self) -> str:
        return self.config.id


class MarkedTrigger(DeclaredTrigger[ConfigT]):
    """A declarative kind whose verdict depends on its marks alone. ``explain`` marks the
    context's actions with the same ``classify`` the index uses, so the rescan and the index
    ask one ``_verdict`` the same question."""

    def explain(self, ctx: ProactiveTriggerContext) -> TriggerVerdict:
        marks: Marks = tuple([] for _ in range(self.mark_count))
        for action in ctx.recent_actions:
            for times, marked in zip(marks, self.classify(action)):
                if marked:
                    times.append(action.timestamp_start)
        for times in marks:
            times.sort()
        return self._verdict(marks, eval_now(ctx), consumed_until(ctx, self.trigger_id))

    def evaluate_marks(
        self, marks: Marks, latest: Optional[SlimAction], now: float, since: float = NEVER
    ) -> Optional[ProactiveTriggerResult]:
        return self._verdict(marks, now, since).result

    def _verdict(self, marks: Marks, now: float, since: float) -> TriggerVerdict:
        raise NotImplementedError


class ActionMatcher:
    """An ``ActionMatch`` of proactive.yml, compiled: does this action count?"""

    def __init__(self, match: ActionMatch) -> None:
        self.match = match

    def __call__(self, action: SlimAction) -> bool:
        m = self.match
        if m.kind and (action.type or "").lower() not in m.kind:
            return False
        if m.label and not has_any((action.title or "").lower(), m.label):
            return False
        return m.page is None or page_matches(m.page, action_path(action))

    def describe(self) -> str:
        m = self.match
        parts = [" / ".join(repr(h) for h in m.label) if m.label else "any action"]
        if m.kind:
            parts.append(f"({' / '.join(m.kind)})")
        if m.page:
            parts.append(f"on {m.page}")
        return " ".join(parts)


def eval_now(ctx: ProactiveTriggerContext) -> float:
    now = ctx.context_extra.get(EVAL_NOW)
    if not isinstance(now, (int, float)):
        raise ValueError(f"context_extra[{EVAL_NOW!r}] must hold the evaluation time")
    return float(now)


def consumed_until(ctx: ProactiveTriggerContext, trigger_id: str) -> float:
    """Actions stamped at or before this were evidence of an offer of this trigger already shown."""
    marks = ctx.context_extra.get(CONSUMED)
    return float(marks.get(trigger_id, NEVER)) if isinstance(marks, Mapping) else NEVER


def latest_action(ctx: ProactiveTriggerContext) -> SlimAction:
    """The action with the largest timestamp: batches arrive out of order, so never the last one."""
    return max(ctx.recent_actions, key=lambda a: a.timestamp_start)


def last_at_or_before(times: Sequence[float], limit: float) -> Optional[float]:
    i = bisect.bisect_right(times, limit)
    return times[i - 1] if i else None


def first_after(times: Sequence[float], limit: float) -> Optional[float]:
    i = bisect.bisect_right(times, limit)
    return times[i] if i < len(times) else None


def result(trigger_id: str, body: str, evidence_until: float, **metadata: Any) -> ProactiveTriggerResult:
    return ProactiveTriggerResult(trigger_id=trigger_id, body=body, metadata={**metadata, EVIDENCE_UNTIL: evidence_until})


def has_any(label: str, hints: Sequence[str]) -> bool:
    for hint in hints:  # a loop, not any(<generator>): this runs for every event ingested
        if hint in label:
            return True
    return False


def label_has(action: SlimAction, hints: Sequence[str]) -> bool:
    return has_any((action.title or "").lower(), hints)

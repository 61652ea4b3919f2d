"""Triggers declared in ``proactive.yml``, compiled into an ordered SDK registry.

Every trigger here answers two questions about a ``ProactiveTriggerContext``: does it fire
(``evaluate``, the SDK's ``ProactiveTrigger`` protocol) and why or why not (``explain``, for
``/debug``). Triggers are pure: the evaluation time comes from ``context_extra["eval_now"]``.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from autoplay_sdk.core.models import SlimAction
from autoplay_sdk.proactive.triggers import ProactiveTriggerContext, ProactiveTriggerResult, ProactiveTriggerRegistry
from autoplay_sdk.proactive.triggers.builtin_catalog import BUILTIN_TRIGGER_CATALOG

from addons.config import BuiltinTriggerConfig, ProactiveConfig, RepeatedActionTriggerConfig, TriggerConfig
from addons.urls import action_path

logger = logging.getLogger(__name__)

EVAL_NOW = "eval_now"  # the context_extra key the SDK's own time-based triggers read
# context_extra key: {trigger_id: time}; an offer of that trigger was shown, and every action
# stamped at or before the time was its evidence (see ``addons.offers.gate``: an offer consumes
# its evidence).
CONSUMED = "consumed_until"
EVIDENCE_UNTIL = "evidence_until"  # result metadata: the newest action that made it fire
NEVER = float("-inf")


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


class RepeatedActionTrigger(ExplainingTrigger):
    """Fires when a user repeats an action on a page and has not found the faster way.

    For ``bulk_edit_opportunity``: the latest action is on ``/projects``; nothing in the window
    mentions bulk edit; and at least ``min_count`` "save changes" actions on ``/projects`` fall
    within the trailing ``window_s`` seconds.
    """

    def __init__(self, config: RepeatedActionTriggerConfig) -> None:
        self.config = config

    @property
    def trigger_id(self) -> str:
        return self.config.id

    def explain(self, ctx: ProactiveTriggerContext) -> TriggerVerdict:
        c = self.config
        now = eval_now(ctx)
        if not ctx.recent_actions:
            return self._no("no activity in this session")
        latest_path = action_path(latest_action(ctx))
        if c.page not in latest_path:
            return self._no(f"latest action is on {latest_path or 'an unknown page'}, not a {c.page} page")
        in_window = [a for a in ctx.recent_actions if now - c.window_s <= a.timestamp_start <= now + 1.0]
        discovered = next((a for a in in_window if _label_has(a, c.discovered_hints)), None)
        if discovered is not None:
            return self._no(f"already discovered: '{discovered.title}' within the last {c.window_s:g} s")
        since = consumed_until(ctx, c.id)
        repeats = [
            a for a in in_window
            if a.timestamp_start > since and c.page in action_path(a) and _label_has(a, c.action_hints)
        ]
        if len(repeats) < c.min_count:
            after = " since its last offer" if since >= now - c.window_s else ""
            return self._no(
                f"{len(repeats)} of {c.min_count} {' / '.join(repr(h) for h in c.action_hints)} "
                f"actions on {c.page} within the last {c.window_s:g} s{after}"
            )
        evidence = max(a.timestamp_start for a in repeats)
        result = ProactiveTriggerResult(
            trigger_id=c.id,
            body=c.body,
            metadata={"repeats": len(repeats), "window_s": c.window_s, EVIDENCE_UNTIL: evidence},
        )
        return TriggerVerdict(c.id, True, f"{len(repeats)} repeats within {c.window_s:g} s", result)

    def _no(self, reason: str) -> TriggerVerdict:
        return TriggerVerdict(self.config.id, False, reason)

    # -- the same verdict from an incremental index (addons.offers.index), without a rescan --------

    def classify(self, action: SlimAction) -> Tuple[bool, bool]:
        """(counts as a repeat, shows the faster way was discovered): what the index keeps."""
        c = self.config
        label = (action.title or "").lower()
        # The label test first: finding the URL's path is the dearer half, and most actions fail the label.
        repeat = _has_any(label, c.action_hints) and c.page in action_path(action)
        return repeat, _has_any(label, c.discovered_hints)

    def evaluate_marks(
        self, marks: "TriggerMarks", latest: Optional[SlimAction], now: float, since: float = NEVER
    ) -> Optional[ProactiveTriggerResult]:
        """``explain(ctx).result`` for the session whose marked timestamps are ``marks``, whose
        latest action is ``latest`` and whose evidence up to ``since`` was consumed by an offer,
        in O(log n): the same bounds, the same comparisons."""
        c = self.config
        if latest is None or c.page not in action_path(latest):
            return None
        low, high = now - c.window_s, now + 1.0
        discovered = marks.discovered
        first = bisect.bisect_left(discovered, low)
        if first < len(discovered) and discovered[first] <= high:
            return None
        first = bisect.bisect_right(marks.repeats, since) if since >= low else bisect.bisect_left(marks.repeats, low)
        end = bisect.bisect_right(marks.repeats, high)
        if end - first < c.min_count:
            return None
        return ProactiveTriggerResult(
            trigger_id=c.id, body=c.body,
            metadata={"repeats": end - first, "window_s": c.window_s, EVIDENCE_UNTIL: marks.repeats[end - 1]},
        )

    def next_change(self, marks: "TriggerMarks", now: float) -> float:
        """The earliest time after ``now`` at which, with no new actions, the verdict could turn
        to firing: a discovered action leaving the window, or a future-stamped repeat entering
        it. Repeats leaving and the latest page never turn a "no" into a "yes"."""
        c = self.config
        wake = float("inf")
        first = bisect.bisect_left(marks.discovered, now - c.window_s)
        if first < len(marks.discovered):
            wake = marks.discovered[first] + c.window_s
        entering = bisect.bisect_right(marks.repeats, now + 1.0)
        if entering < len(marks.repeats):
            wake = min(wake, marks.repeats[entering] - 1.0)
        return wake


@dataclass
class TriggerMarks:
    """One session's timestamps that one ``RepeatedActionTrigger`` counts, each list sorted."""

    repeats: List[float]
    discovered: List[float]


class BuiltinTrigger(ExplainingTrigger):
    """An autoplay-sdk catalogue trigger, optionally with our own toast body."""

    def __init__(self, config: BuiltinTriggerConfig) -> None:
        if config.id not in BUILTIN_TRIGGER_CATALOG:
            raise ValueError(
                f"unknown built-in trigger {config.id!r}; available: {sorted(BUILTIN_TRIGGER_CATALOG)}"
            )
        self.config = config
        self._inner = BUILTIN_TRIGGER_CATALOG[config.id].build(None)

    @property
    def trigger_id(self) -> str:
        return self.config.id

    def explain(self, ctx: ProactiveTriggerContext) -> TriggerVerdict:
        since = consumed_until(ctx, self.config.id)
        if since != NEVER:  # what an earlier offer of it already answered is not evidence again
            ctx = replace(ctx, recent_actions=tuple(a for a in ctx.recent_actions if a.timestamp_start > since))
        result = self._inner.evaluate(ctx)
        if result is None:
            return TriggerVerdict(self.config.id, False, f"{self.config.name}: pattern not present")
        if self.config.body:
            result = replace(result, body=self.config.body)
        return TriggerVerdict(self.config.id, True, f"{self.config.name}: matched", result)


class IsolatedTrigger(ExplainingTrigger):
    """Keeps one raising trigger from stopping the ones after it (the SDK registry does not)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property
    def trigger_id(self) -> str:
        return str(self.inner.trigger_id)

    def explain(self, ctx: ProactiveTriggerContext) -> TriggerVerdict:
        try:
            verdict: TriggerVerdict = self.inner.explain(ctx)
            return verdict
        except Exception as e:  # a trigger is third-party code from the engine's point of view
            logger.exception("trigger %s raised on session %s; skipped", self.trigger_id, ctx.session_id)
            return TriggerVerdict(self.trigger_id, False, f"raised {type(e).__name__}: {e}")


class TriggerRegistry(ProactiveTriggerRegistry):
    """The SDK's ordered registry (first match wins), over triggers that each explain
    themselves and are isolated from each other."""

    def __init__(self, triggers: Sequence[IsolatedTrigger]) -> None:
        super().__init__(list(triggers))
        self.isolated: Tuple[IsolatedTrigger, ...] = tuple(triggers)


def compile_registry(config: ProactiveConfig) -> TriggerRegistry:
    """The configured triggers in order, each isolated."""
    return TriggerRegistry([IsolatedTrigger(build_trigger(t)) for t in config.triggers])


def build_trigger(config: TriggerConfig) -> Any:
    if isinstance(config, RepeatedActionTriggerConfig):
        return RepeatedActionTrigger(config)
    return BuiltinTrigger(config)


def explain_all(triggers: Sequence[ExplainingTrigger], ctx: ProactiveTriggerContext) -> Tuple[TriggerVerdict, ...]:
    return tuple(t.explain(ctx) for t in triggers)


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



def _label_has(action: SlimAction, hints: Sequence[str]) -> bool:
    return _has_any((action.title or "").lower(), hints)


def _has_any(label: str, hints: Sequence[str]) -> bool:
    for hint in hints:  # a loop, not any(<generator>): this runs for every event ingested
        if hint in label:
            return True
    return False

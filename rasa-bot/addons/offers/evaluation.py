"""How the engine finds the sessions to evaluate and their trigger verdicts: two strategies
behind one interface.

* ``FullRescan``, the reference: every evaluation builds the session's trigger context from
  all its actions, and every tick visits every tracked user's latest session.
* ``Incremental``: a ``TriggerIndex`` keeps each session's marked timestamps, so a verdict is
  a few binary searches, and a ``TickPlan`` keeps the tick to sessions that could change.
  ``tests/unit/test_index.py`` checks it makes the same offers as the reference.

``choose_strategy`` takes ``Incremental`` whenever every configured trigger can be indexed.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Protocol, Set, Tuple

from autoplay_sdk.core.models import SlimAction
from autoplay_sdk.proactive.triggers import ProactiveTriggerContext, ProactiveTriggerResult
from autoplay_sdk.proactive.triggers.context_source import build_proactive_context_from_payloads

from addons.config import BuiltinTriggerConfig, ProactiveConfig
from addons.offers.gate import SessionGate
from addons.offers.index import TriggerIndex
from addons.offers.triggers import (
    CONSUMED, EVAL_NOW, NEVER, IndexedTrigger, TriggerRegistry, TriggerVerdict, explain_all, latest_action,
)
from addons.stores.protocols import NOW, ActivityStore, TickPlan

logger = logging.getLogger(__name__)


class Evaluation(NamedTuple):
    """A session's verdict: the first trigger that fired (if any) and the latest action."""

    result: Optional[ProactiveTriggerResult]
    latest: Optional[SlimAction]



class EvaluationStrategy(Protocol):
    def evaluate(self, session_id: str, now: float) -> Evaluation:
        """First match wins; a raising trigger is logged and skipped. With no match, plans
        the session's next look for the tick."""

    def due(self, now: float) -> List[Tuple[str, str]]:
        """The (user_id, session_id) pairs this tick evaluates (latest sessions only)."""

    def gone_sessions(self) -> Iterable[str]:
        """Sessions that may have left the activity store since the last tick."""

    def watch(self, session_id: str) -> None:
        """The session's gate is closed (or just changed): look again when it could open."""

    def wake_at(self, session_id: str, when: float) -> None:
        """Look at the session again at ``when`` (epoch seconds), e.g. when a cap lifts."""

    def retry(self, session_id: str) -> None:
        """The session's evaluation raised: try again next tick."""


class FullRescan:
    def __init__(self, config: ProactiveConfig, registry: TriggerRegistry, activity: ActivityStore,
                 gate: SessionGate) -> None:
        self._product_id = config.product_id
        self._registry = registry
        self._activity = activity
        self._gate = gate
        self._context_extra: Dict[str, Any] = {}
        for trigger in config.triggers:
            if isinstance(trigger, BuiltinTriggerConfig):
                self._context_extra.update(trigger.context_extra)

    def evaluate(self, session_id: str, now: float) -> Evaluation:
        ctx = self.context(session_id, now)
        return Evaluation(self._registry.evaluate_first(ctx), latest_action(ctx) if ctx.recent_actions else None)

    def explain(self, session_id: str, now: float) -> Tuple[List[SlimAction], Tuple[TriggerVerdict, ...]]:
        """The session's actions and every trigger's verdict with its reason (for /debug)."""
        ctx = self.context(session_id, now)
        return list(ctx.recent_actions), explain_all(self._registry.isolated, ctx)

    def context(self, session_id: str, now: float) -> ProactiveTriggerContext:
        payloads = self._activity.load_payloads(product_id=self._product_id, session_id=session_id)
        return build_proactive_context_from_payloads(
            payloads,
            lookback_seconds=None,  # the store already bounds history; triggers apply their own windows
            max_actions=None,
            now=now,
            session_id=session_id,
            product_id=self._product_id,
            action_count=sum(p.count for p in payloads),
            context_extra={**self._context_extra, EVAL_NOW: now, CONSUMED: self._gate.consumed(session_id)},
        )

    def due(self, now: float) -> List[Tuple[str, str]]:
        return list(self._activity.latest_sessions())

    def gone_sessions(self) -> Iterable[str]:
        return self._gate.store.session_ids()

    def watch(self, session_id: str) -> None:
        pass  # every tick looks at every session anyway

    def wake_at(self, session_id: str, when: float) -> None:
        pass

    def retry(self, session_id: str) -> None:
        pass


class Incremental:
    """Indexed verdicts and a planned tick. An ``ActionObserver`` of the activity store, so
    the plan follows every change, whoever makes it."""

    def __init__(self, index: TriggerIndex, activity: ActivityStore, gate: SessionGate, plan: TickPlan) -> None:
        self._index = index
        self._activity = activity
        self._gate = gate
        self._plan = plan
        self._orphaned_users: Set[str] = set()  # their latest session may have changed
        self._dropped_sessions: Set[str] = set()
        activity.add_observer(index)
        activity.add_observer(self)

    def evaluate(self, session_id: str, now: float) -> Evaluation:
        latest = self._activity.latest_action(session_id)
        consumed = self._gate.consumed(session_id)
        wake = float("inf")
        for position, trigger in enumerate(self._index.triggers):
            marks = self._index.marks(session_id, position)
            try:
                result = trigger.evaluate_marks(marks, latest, now, consumed.get(trigger.trigger_id, NEVER))
                if result is not None:
                    return Evaluation(result, latest)
                wake = min(wake, trigger.next_change(marks, now))
            except Exception:
                logger.exception("trigger %s raised on session %s; skipped", trigger.trigger_id, session_id)
                wake = NOW  # a full pass would ask it again next tick
        self._plan.settle(session_id, wake)
        return Evaluation(None, latest)

    def due(self, now: float) -> List[Tuple[str, str]]:
        for user_id in sorted(self._orphaned_users):
            latest = self._activity.latest_session(user_id)
            if latest is not None:
                self._plan.wake_at(latest, NOW)
        self._orphaned_users.clear()
        due = []
        for session_id in self._plan.due(now, self._gate.clock()):
            owner = self._activity.user_of(session_id)
            if owner is None or self._activity.latest_session(owner) != session_id:
                self._plan.forget(session_id)  # only a user's latest session is evaluated
                continue
            due.append((owner, session_id))
        return due

    def gone_sessions(self) -> Iterable[str]:
        gone, self._dropped_sessions = self._dropped_sessions, set()
        return gone

    def watch(self, session_id: str) -> None:
        self._plan.watch(session_id, self._gate.opens_at(session_id))

    def wake_at(self, session_id: str, when: float) -> None:
        self._plan.wake_at(session_id, when)

    def retry(self, session_id: str) -> None:
        self._plan.wake_at(session_id, NOW)

    # -- ActionObserver: the plan follows the store ---------------------------------------

    def added(self, session_id: str, action: SlimAction) -> None:
        # Ingest evaluates at once and re-plans; actions stored any other way wait for the tick.
        self._plan.wake_at(session_id, NOW)

    def removed(self, session_id: str, action: SlimAction) -> None:
        pass  # trimming happens inside add(), whose added() already woke the session

    def dropped(self, session_id: str) -> None:
        self._plan.forget(session_id)
        self._dropped_sessions.add(session_id)

    def unlinked(self, user_id: str) -> None:
        self._orphaned_users.add(user_id)

    def restored(self, session_id: str, action: SlimAction) -> None:
        # A session moved in: look at it next tick, unless the plan it came with replaces this
        # (``addons.stores.user_state`` imports the tick plan after the activity).
        self._plan.wake_at(session_id, NOW)


def choose_strategy(
    config: ProactiveConfig,
    registry: TriggerRegistry,
    activity: ActivityStore,
    gate: SessionGate,
    plan: TickPlan,
    *,
    incremental: bool = True,
) -> EvaluationStrategy:
    """``Incremental`` when asked for and every trigger is indexable, else ``FullRescan``."""
    triggers = [t.inner for t in registry.isolated]
    indexed = [t for t in triggers if isinstance(t, IndexedTrigger)]
    if incremental and len(indexed) == len(triggers):
        return Incremental(TriggerIndex(indexed), activity, gate, plan)
    return FullRescan(config, registry, activity, gate)

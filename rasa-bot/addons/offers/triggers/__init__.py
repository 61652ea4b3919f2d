"""Triggers declared in ``proactive.yml``, one module per kind, compiled into one ordered
registry (first match wins), each isolated from the others.

A new kind: its config dataclass in ``addons/config.py`` (and its `type` in ``TRIGGER_TYPES``),
its class here (an ``IndexedTrigger`` if it can answer from marks, as every declarative kind
does), and a line in ``build_trigger``.
"""

from __future__ import annotations

import logging
from typing import Sequence, Tuple

from autoplay_sdk.proactive.triggers import ProactiveTriggerContext, ProactiveTriggerRegistry

from addons.config import (
    AbsenceTriggerConfig, BuiltinTriggerConfig, DwellTriggerConfig, ProactiveConfig, RepeatedActionTriggerConfig,
    SequenceTriggerConfig, TriggerConfig,
)
from addons.offers.triggers.absence import AbsenceTrigger
from addons.offers.triggers.base import (
    CONSUMED, EVAL_NOW, EVIDENCE_UNTIL, NEVER, ExplainingTrigger, IndexedTrigger, Marks, TriggerVerdict,
    consumed_until, eval_now, latest_action,
)
from addons.offers.triggers.builtin import BuiltinTrigger
from addons.offers.triggers.dwell import DwellTrigger
from addons.offers.triggers.repeated import RepeatedActionTrigger
from addons.offers.triggers.sequence import SequenceTrigger

__all__ = [
    "CONSUMED", "EVAL_NOW", "EVIDENCE_UNTIL", "NEVER", "AbsenceTrigger", "BuiltinTrigger", "DwellTrigger",
    "ExplainingTrigger", "IndexedTrigger", "IsolatedTrigger", "Marks", "RepeatedActionTrigger", "SequenceTrigger",
    "TriggerRegistry", "TriggerVerdict", "build_trigger", "compile_registry", "consumed_until", "eval_now",
    "explain_all", "latest_action",
]

logger = logging.getLogger(__name__)


class IsolatedTrigger(ExplainingTrigger):
    """Keeps one raising trigger from stopping the ones after it (the SDK registry does not)."""

    def __init__(self, inner: ExplainingTrigger) -> None:
        self.inner = inner

    @property
    def trigger_id(self) -> str:
        return str(self.inner.trigger_id)

    def explain(self, ctx: ProactiveTriggerContext) -> TriggerVerdict:
        try:
            return self.inner.explain(ctx)
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


def build_trigger(config: TriggerConfig) -> ExplainingTrigger:
    if isinstance(config, RepeatedActionTriggerConfig):
        return RepeatedActionTrigger(config)
    if isinstance(config, SequenceTriggerConfig):
        return SequenceTrigger(config)
    if isinstance(config, DwellTriggerConfig):
        return DwellTrigger(config)
    if isinstance(config, AbsenceTriggerConfig):
        return AbsenceTrigger(config)
    assert isinstance(config, BuiltinTriggerConfig)
    return BuiltinTrigger(config)


def explain_all(triggers: Sequence[ExplainingTrigger], ctx: ProactiveTriggerContext) -> Tuple[TriggerVerdict, ...]:
    return tuple(t.explain(ctx) for t in triggers)

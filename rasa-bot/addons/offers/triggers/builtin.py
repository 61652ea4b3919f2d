"""``builtin``: one of autoplay-sdk's catalogue triggers, selected by id."""

from __future__ import annotations

from dataclasses import replace

from autoplay_sdk.proactive.triggers import ProactiveTriggerContext
from autoplay_sdk.proactive.triggers.builtin_catalog import BUILTIN_TRIGGER_CATALOG

from addons.config import BuiltinTriggerConfig
from addons.offers.triggers.base import NEVER, ExplainingTrigger, TriggerVerdict, consumed_until

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

"""``absence``: did X, then no Y within T (started something, never finished it)."""

from __future__ import annotations

from typing import Optional, Tuple

from autoplay_sdk.core.models import SlimAction

from addons.config import AbsenceTriggerConfig
from addons.offers.triggers.base import (
    LATE, ActionMatcher, MarkedTrigger, Marks, TriggerVerdict, first_after, last_at_or_before, result,
)

DID, THEN_NOT = 0, 1


class AbsenceTrigger(MarkedTrigger[AbsenceTriggerConfig]):
    mark_count = 2

    def __init__(self, config: AbsenceTriggerConfig) -> None:
        super().__init__(config)
        self.did = ActionMatcher(config.did)
        self.then_not = ActionMatcher(config.then_not)

    def classify(self, action: SlimAction) -> Tuple[bool, ...]:
        return self.did(action), self.then_not(action)

    def next_change(self, marks: Marks, now: float) -> float:
        """Time running out after the latest X, or a future-stamped X coming due."""
        wake = float("inf")
        did = last_at_or_before(marks[DID], now)
        if did is not None and now < did + self.config.within_s:
            answered = first_after(marks[THEN_NOT], did)
            if answered is None or answered > now + LATE:
                wake = did + self.config.within_s
        upcoming = first_after(marks[DID], now)
        return wake if upcoming is None else min(wake, upcoming)

    def _verdict(self, marks: Marks, now: float, since: float) -> TriggerVerdict:
        c = self.config
        did = last_at_or_before(marks[DID], now)
        if did is None:
            return self._no(f"no {self.did.describe()} yet")
        if did <= since:
            return self._no(f"no {self.did.describe()} since its last offer")
        answered = first_after(marks[THEN_NOT], did)
        if answered is not None and answered <= now + LATE:
            return self._no(f"{self.then_not.describe()} followed {now - answered:.0f} s ago")
        if now < did + c.within_s:
            return self._no(f"{now - did:.0f} s of {c.within_s:g} s since {self.did.describe()}")
        return TriggerVerdict(c.id, True, f"no {self.then_not.describe()} within {c.within_s:g} s of "
                              f"{self.did.describe()}", result(c.id, c.body, did, waited_s=now - did))

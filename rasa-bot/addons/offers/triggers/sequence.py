"""``sequence``: A, then B within T, with no C in between (C optional); offered as B happens."""

from __future__ import annotations

import bisect
from typing import Optional, Tuple

from autoplay_sdk.core.models import SlimAction

from addons.config import SequenceTriggerConfig
from addons.offers.triggers.base import (
    LATE, ActionMatcher, MarkedTrigger, Marks, TriggerVerdict, first_after, last_at_or_before, result,
)

FIRST, THEN, BETWEEN = 0, 1, 2


class SequenceTrigger(MarkedTrigger[SequenceTriggerConfig]):
    mark_count = 3

    def __init__(self, config: SequenceTriggerConfig) -> None:
        super().__init__(config)
        self.first = ActionMatcher(config.first)
        self.then = ActionMatcher(config.then)
        self.between = ActionMatcher(config.not_between) if config.not_between else None

    def classify(self, action: SlimAction) -> Tuple[bool, ...]:
        return self.first(action), self.then(action), self.between is not None and self.between(action)

    def next_change(self, marks: Marks, now: float) -> float:
        """Only a future-stamped B coming due can turn a "no" into a "yes" by itself."""
        entering = first_after(marks[THEN], now + LATE)
        return float("inf") if entering is None else entering - LATE

    def _verdict(self, marks: Marks, now: float, since: float) -> TriggerVerdict:
        c = self.config
        then = last_at_or_before(marks[THEN], now + LATE)
        if then is None or then <= since:
            return self._no(f"no {self.then.describe()}" + (" since its last offer" if then is not None else ""))
        if now - then > c.within_s:
            return self._no(f"the last {self.then.describe()} was {now - then:.0f} s ago, more than {c.within_s:g} s")
        before = bisect.bisect_left(marks[FIRST], then)
        first = marks[FIRST][before - 1] if before else None
        if first is None or first < then - c.within_s:
            return self._no(f"no {self.first.describe()} within {c.within_s:g} s before {self.then.describe()}")
        if first <= since:  # an A the last offer already answered is not evidence again
            return self._no(f"no {self.first.describe()} since its last offer")
        between = first_after(marks[BETWEEN], first)
        if self.between is not None and between is not None and between < then:
            return self._no(f"{self.between.describe()} came in between")
        return TriggerVerdict(c.id, True, f"{self.first.describe()} then {self.then.describe()} "
                              f"{then - first:.0f} s apart", result(c.id, c.body, then, apart_s=then - first))

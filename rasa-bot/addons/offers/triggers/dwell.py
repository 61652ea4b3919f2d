"""``dwell``: on a page for at least T with at most N actions: looking for something."""

from __future__ import annotations

import bisect
from typing import Optional, Tuple

from autoplay_sdk.core.models import SlimAction

from addons.config import DwellTriggerConfig
from addons.offers.triggers.base import (
    NEVER, MarkedTrigger, Marks, TriggerVerdict, result,
)
from addons.urls import action_path, page_matches

ON, OFF = 0, 1  # actions on a matching page, and all others


class DwellTrigger(MarkedTrigger[DwellTriggerConfig]):
    mark_count = 2

    def classify(self, action: SlimAction) -> Tuple[bool, ...]:
        on = self._on_page(action)
        return on, not on

    def next_change(self, marks: Marks, now: float) -> float:
        """The moment the current visit has lasted ``min_s`` (if it is still quiet enough)."""
        visit = self._visit(marks)
        if visit is None or visit[1] > self.config.max_actions or now - visit[0] >= self.config.min_s:
            return float("inf")
        return visit[0] + self.config.min_s

    def _on_page(self, action: SlimAction) -> bool:
        return page_matches(self.config.page, action_path(action))

    def _visit(self, marks: Marks) -> Optional[Tuple[float, int]]:
        """(arrival, actions since) of the visit the user is on now, if on a matching page."""
        on, off = marks[ON], marks[OFF]
        left = off[-1] if off else NEVER
        if not on or on[-1] <= left:
            return None
        start = bisect.bisect_right(on, left)
        return on[start], len(on) - start

    def _verdict(self, marks: Marks, now: float, since: float) -> TriggerVerdict:
        c = self.config
        visit = self._visit(marks)
        if visit is None:
            return self._no(f"the latest action is not on a {c.page} page")
        arrival, actions = visit
        if arrival <= since:
            return self._no("this visit already had its offer")
        if actions > c.max_actions:
            return self._no(f"{actions} actions on this visit, more than {c.max_actions}")
        if now - arrival < c.min_s:
            return self._no(f"on {c.page} for {now - arrival:.0f} s of {c.min_s:g} s")
        return TriggerVerdict(c.id, True, f"on {c.page} for {now - arrival:.0f} s with {actions} action(s)",
                              result(c.id, c.body, marks[ON][-1], dwell_s=now - arrival, actions=actions))

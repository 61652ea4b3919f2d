"""``repeated_action``: the same action done again and again on a page, the faster way unfound.

For ``bulk_edit_opportunity``: the latest action is on ``/projects``; nothing in the window
mentions bulk edit; and at least ``min_count`` "save changes" actions on ``/projects`` fall
within the trailing ``window_s`` seconds (and after the last offer of it: its evidence is spent).
"""

from __future__ import annotations

import bisect
from typing import Optional, Tuple

from autoplay_sdk.core.models import SlimAction
from autoplay_sdk.proactive.triggers import ProactiveTriggerContext, ProactiveTriggerResult

from addons.config import RepeatedActionTriggerConfig
from addons.offers.triggers.base import (
    LATE, NEVER, DeclaredTrigger, Marks, TriggerVerdict, consumed_until, eval_now, has_any, label_has, latest_action,
    result,
)
from addons.urls import action_path, page_matches

REPEATS, DISCOVERED = 0, 1  # the trigger's marks


class RepeatedActionTrigger(DeclaredTrigger[RepeatedActionTriggerConfig]):
    mark_count = 2

    def explain(self, ctx: ProactiveTriggerContext) -> TriggerVerdict:
        c = self.config
        now = eval_now(ctx)
        if not ctx.recent_actions:
            return self._no("no activity in this session")
        latest_path = action_path(latest_action(ctx))
        if not page_matches(c.page, latest_path):
            return self._no(f"latest action is on {latest_path or 'an unknown page'}, not a {c.page} page")
        in_window = [a for a in ctx.recent_actions if now - c.window_s <= a.timestamp_start <= now + LATE]
        discovered = next((a for a in in_window if label_has(a, c.discovered_hints)), None)
        if discovered is not None:
            return self._no(f"already discovered: '{discovered.title}' within the last {c.window_s:g} s")
        since = consumed_until(ctx, c.id)
        repeats = [
            a for a in in_window
            if a.timestamp_start > since and page_matches(c.page, action_path(a)) and label_has(a, c.action_hints)
        ]
        if len(repeats) < c.min_count:
            after = " since its last offer" if since >= now - c.window_s else ""
            return self._no(
                f"{len(repeats)} of {c.min_count} {' / '.join(repr(h) for h in c.action_hints)} "
                f"actions on {c.page} within the last {c.window_s:g} s{after}"
            )
        evidence = max(a.timestamp_start for a in repeats)
        return TriggerVerdict(
            c.id, True, f"{len(repeats)} repeats within {c.window_s:g} s",
            result(c.id, c.body, evidence, repeats=len(repeats), window_s=c.window_s),
        )

    # -- the same verdict from the index (addons.offers.index), without a rescan ------------

    def classify(self, action: SlimAction) -> Tuple[bool, ...]:
        c = self.config
        label = (action.title or "").lower()
        # The label test first: finding the URL's path is the dearer half, and most actions fail the label.
        repeat = has_any(label, c.action_hints) and page_matches(c.page, action_path(action))
        return repeat, has_any(label, c.discovered_hints)

    def evaluate_marks(
        self, marks: Marks, latest: Optional[SlimAction], now: float, since: float = NEVER
    ) -> Optional[ProactiveTriggerResult]:
        c = self.config
        if latest is None or not page_matches(c.page, action_path(latest)):
            return None
        low, high = now - c.window_s, now + LATE
        discovered, repeats = marks[DISCOVERED], marks[REPEATS]
        first = bisect.bisect_left(discovered, low)
        if first < len(discovered) and discovered[first] <= high:
            return None
        first = bisect.bisect_right(repeats, since) if since >= low else bisect.bisect_left(repeats, low)
        end = bisect.bisect_right(repeats, high)
        if end - first < c.min_count:
            return None
        return result(c.id, c.body, repeats[end - 1], repeats=end - first, window_s=c.window_s)

    def next_change(self, marks: Marks, now: float) -> float:
        """A discovered action leaving the window, or a future-stamped repeat entering it.
        Repeats leaving and the latest page never turn a "no" into a "yes"."""
        c = self.config
        wake = float("inf")
        discovered, repeats = marks[DISCOVERED], marks[REPEATS]
        first = bisect.bisect_left(discovered, now - c.window_s)
        if first < len(discovered):
            wake = discovered[first] + c.window_s
        entering = bisect.bisect_right(repeats, now + LATE)
        if entering < len(repeats):
            wake = min(wake, repeats[entering] - LATE)
        return wake

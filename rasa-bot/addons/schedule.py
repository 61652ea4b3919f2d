"""Which sessions the periodic tick must look at, so its cost follows what can change.

A session needs the tick only when something could give it an offer without a new event:

* its gate is closed (PROACTIVE, REACTIVE, a tour, a cooldown): *watched* every tick until
  an evaluation finds the gate open again, since only the tick moves the state on;
* its trigger verdict could turn with time (a "discovered" hint leaving the window, a
  future-stamped action entering it): *woken* at the time the trigger computed;
* it changed without being evaluated (actions stored by another writer, the user's latest
  session changed by an eviction): *woken* at once.

Everything else would be evaluated to the same "no" it got last time, so it is skipped.
"""

from __future__ import annotations

import heapq
from typing import Dict, List, Set, Tuple

NOW = float("-inf")  # wake at the next tick, whatever its time


class TickSchedule:
    def __init__(self) -> None:
        self._heap: List[Tuple[float, str]] = []
        self._wake: Dict[str, float] = {}  # session → its one current wake time (older heap entries are stale)
        self._watched: Set[str] = set()

    def wake_at(self, session_id: str, when: float) -> None:
        """Evaluate the session at the first tick at or after ``when`` (replaces any earlier plan)."""
        if when == float("inf"):
            self._wake.pop(session_id, None)
            return
        if self._wake.get(session_id) == when:
            return
        self._wake[session_id] = when
        heapq.heappush(self._heap, (when, session_id))
        if len(self._heap) > 4 * len(self._wake) + 64:
            self._compact()

    def watch(self, session_id: str) -> None:
        self._watched.add(session_id)

    def settle(self, session_id: str, when: float) -> None:
        """The gate was open: stop watching; wake when the verdict could next change."""
        self._watched.discard(session_id)
        self.wake_at(session_id, when)

    def forget(self, session_id: str) -> None:
        self._watched.discard(session_id)
        self._wake.pop(session_id, None)

    def due(self, now: float) -> List[str]:
        """Sessions to evaluate at ``now``, each once; woken ones leave the plan."""
        due = set(self._watched)
        while self._heap and self._heap[0][0] <= now:
            when, session_id = heapq.heappop(self._heap)
            if self._wake.get(session_id) == when:
                del self._wake[session_id]
                due.add(session_id)
        return sorted(due)

    def watched_count(self) -> int:
        return len(self._watched)

    def planned_count(self) -> int:
        return len(self._wake)

    def _compact(self) -> None:
        self._heap = [(when, sid) for sid, when in self._wake.items()]
        heapq.heapify(self._heap)

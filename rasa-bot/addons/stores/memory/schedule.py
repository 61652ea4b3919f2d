"""The in-memory ``TickPlan``: which sessions the periodic tick must look at, so its cost
follows what can change.

A session needs the tick only when something could give it an offer without a new event:

* its gate is closed (PROACTIVE, REACTIVE, a tour, a cooldown): *watched* from the moment
  the state could next change on its own (a timeout, a cooldown's end, on the session
  state's monotonic clock) until an evaluation finds the gate open again;
* its trigger verdict could turn with time (a "discovered" hint leaving the window, a
  future-stamped action entering it): *woken* at the time the trigger computed;
* it changed without being evaluated (actions stored by another writer, the user's latest
  session changed by an eviction): *woken* at once.

Everything else would be evaluated to the same "no" it got last time, so it is skipped.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

from addons.stores.protocols import NOW


@dataclass(frozen=True)
class SessionPlan:
    """One session's place in a ``TickSchedule``, as ``export_session`` gives it and
    ``import_session`` takes it (``addons.stores.user_state``)."""

    next_tick: bool  # woken "at once"
    wake_at: Optional[float]  # epoch seconds; None: no timed wake
    watch_until: Optional[float]  # on the gate's (monotonic) clock, NOW for the next tick; None: not watched


class TickSchedule:
    def __init__(self) -> None:
        self._heap: List[Tuple[float, str]] = []
        self._wake: Dict[str, float] = {}  # session → its one current wake time (older heap entries are stale)
        self._next_tick: Set[str] = set()  # woken "at once": kept out of the heap, since every stored
        # action wakes its session and short-lived heap tuples would churn the garbage collector
        self._gate_heap: List[Tuple[float, str]] = []
        self._watched: Dict[str, float] = {}  # session → when its gate could open (gate clock), same scheme

    def wake_at(self, session_id: str, when: float) -> None:
        """Evaluate the session at the first tick at or after ``when`` (replaces any earlier plan)."""
        if when == NOW:
            self._next_tick.add(session_id)
            return
        self._next_tick.discard(session_id)
        if when == float("inf"):
            self._wake.pop(session_id, None)
            return
        if self._wake.get(session_id) == when:
            return
        self._wake[session_id] = when
        heapq.heappush(self._heap, (when, session_id))
        if len(self._heap) > 4 * len(self._wake) + 64:
            self._compact()

    def watch(self, session_id: str, until: float = NOW) -> None:
        """The session's gate is closed; look again at the first tick once the gate's clock
        reads ``until`` (the earliest its state could move on by itself)."""
        if self._watched.get(session_id) == until:
            return
        self._watched[session_id] = until
        heapq.heappush(self._gate_heap, (until, session_id))
        if len(self._gate_heap) > 4 * len(self._watched) + 64:
            self._gate_heap = [(t, sid) for sid, t in self._watched.items()]
            heapq.heapify(self._gate_heap)

    def settle(self, session_id: str, when: float) -> None:
        """The gate was open: stop watching; wake when the verdict could next change."""
        self._watched.pop(session_id, None)
        self.wake_at(session_id, when)

    def forget(self, session_id: str) -> None:
        self._watched.pop(session_id, None)
        self._wake.pop(session_id, None)
        self._next_tick.discard(session_id)

    def due(self, now: float, gate_now: float) -> List[str]:
        """Sessions to evaluate at ``now`` (``gate_now`` on the gate's clock), each once; they
        leave the plan, and their evaluation plans them again."""
        due = self._next_tick
        self._next_tick = set()
        for heap, plan, clock in ((self._heap, self._wake, now), (self._gate_heap, self._watched, gate_now)):
            while heap and heap[0][0] <= clock:
                when, session_id = heapq.heappop(heap)
                if plan.get(session_id) == when:
                    del plan[session_id]
                    due.add(session_id)
        return sorted(due)

    def export_session(self, session_id: str) -> Optional[SessionPlan]:
        """The session's plan; None when nothing is planned for it."""
        next_tick = session_id in self._next_tick
        wake_at, watch_until = self._wake.get(session_id), self._watched.get(session_id)
        if not next_tick and wake_at is None and watch_until is None:
            return None
        return SessionPlan(next_tick=next_tick, wake_at=wake_at, watch_until=watch_until)

    def import_session(self, session_id: str, plan: Optional[SessionPlan]) -> None:
        """Replace the session's plan with ``plan`` (None: plan nothing for it)."""
        self.forget(session_id)
        if plan is None:
            return
        if plan.wake_at is not None:
            self.wake_at(session_id, plan.wake_at)
        if plan.next_tick:
            self._next_tick.add(session_id)  # beside a timed wake, as ``export_session`` saw it
        if plan.watch_until is not None:
            self.watch(session_id, plan.watch_until)

    def _compact(self) -> None:
        self._heap = [(when, sid) for sid, when in self._wake.items()]
        heapq.heapify(self._heap)


class RevisedTickSchedule(TickSchedule):
    """The schedule, with a revision per session that moves whenever its plan may have changed,
    so that a reader can tell which plans to copy out again (a unit of work's bundle:
    ``addons.stores.user_state.export_user``). Only the bundles pay for it, as for
    ``RevisedSessionStateStore``."""

    def __init__(self) -> None:
        super().__init__()
        self._revisions: Dict[str, int] = {}
        self._revision = 0  # one counter for all sessions: a revision is never given twice

    def revision_of(self, session_id: str) -> int:
        """0 for a session never planned."""
        return self._revisions.get(session_id, 0)

    def wake_at(self, session_id: str, when: float) -> None:
        self._moved(session_id)
        super().wake_at(session_id, when)

    def watch(self, session_id: str, until: float = NOW) -> None:
        self._moved(session_id)
        super().watch(session_id, until)

    def settle(self, session_id: str, when: float) -> None:
        self._moved(session_id)
        super().settle(session_id, when)

    def forget(self, session_id: str) -> None:
        self._moved(session_id)
        super().forget(session_id)

    def due(self, now: float, gate_now: float) -> List[str]:
        due = super().due(now, gate_now)
        for session_id in due:  # they left the plan
            self._moved(session_id)
        return due

    def _moved(self, session_id: str) -> None:
        self._revision += 1
        self._revisions[session_id] = self._revision

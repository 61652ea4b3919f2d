"""In-memory stores of what is known about people: first names, client clock offsets, and
who owns each chat session."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from addons.bounded import BoundedMap


class InMemoryFirstNames:
    """App user id → first name; least recently set go first."""

    def __init__(self, max_users: int = 200_000) -> None:
        self._names: BoundedMap[str, str] = BoundedMap(max_users)

    def set(self, user_id: str, first_name: str) -> None:
        self._names.touch(user_id, first_name)

    def get(self, user_id: str) -> Optional[str]:
        return self._names.get(user_id)

    def forget(self, user_id: str) -> None:
        self._names.pop(user_id, None)


class InMemoryClockSkew:
    """Per-client clock offsets for correcting event times with ``sent_at``.

    PostHog shifts a request's events by (received_at - sent_at): the client's clock error
    plus the time the request spent in transit. Transit only ever adds, so the smallest
    value a client showed recently is the better estimate of its clock error; with it, a
    request that was delayed on the way keeps its events at the times they happened
    instead of moving them after events the user did later. Estimates expire after
    ``window_s`` (a client's clock may be reset) and the least recently seen clients go
    first past ``max_clients``.
    """

    def __init__(self, *, window_s: float = 300.0, max_clients: int = 100_000) -> None:
        self.window_s = window_s
        self.max_clients = max_clients
        self._best: BoundedMap[str, Tuple[float, float]] = BoundedMap(max_clients)  # client → (offset, seen at)

    def offset(self, client: str, observed: float, *, now: float) -> float:
        best = self._best.get(client)
        if best is None or observed <= best[0] or now - best[1] > self.window_s:
            best = (observed, now)
        self._best.touch(client, best)
        return best[0]

    def expire(self, *, now: float) -> int:
        """Drop estimates older than the window (``offset`` would ignore them anyway), so
        idle clients do not pin memory; returns how many went."""
        expired = 0
        while self._best:
            client, (_, seen_at) = next(iter(self._best.items()))
            if now - seen_at <= self.window_s:
                break
            del self._best[client]
            expired += 1
        return expired

    def __len__(self) -> int:
        return len(self._best)


class InMemoryChatOwners:
    """Chat session → the app user it belongs to (the first one to claim it)."""

    def __init__(self) -> None:
        self._owners: Dict[str, str] = {}

    def owner(self, session_id: str) -> Optional[str]:
        return self._owners.get(session_id)

    def claim(self, session_id: str, user_id: str) -> str:
        return self._owners.setdefault(session_id, user_id)

    def release(self, session_id: str) -> None:
        self._owners.pop(session_id, None)

"""Who may send events and how fast: project keys, per-IP and per-user rate limits.

Rejections are logged once per reason and sender per minute (with how many were
suppressed since), so a flood does not become a flood of log lines.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, Optional, Set, Tuple

from addons.bounded import BoundedMap
from addons.config import IngestLimits
from addons.errors import RateLimited
from addons.security.identity import Unauthenticated
from addons.offers.ingest import CaptureBatch, TrackedAction

logger = logging.getLogger(__name__)


class UnknownProjectKey(Unauthenticated):
    """Events without one of the configured public project keys (401)."""

    logged = True  # once per sender and minute, by the guard


class TokenBuckets:
    """One token bucket per key: ``per_minute`` tokens refill per minute, up to a minute's worth.

    Levels and times are kept as plain floats in two maps, not a tuple per key: a new tuple
    on every request would pile up in the collector's oldest generation and set off full
    collections (see BENCHMARKS.md).
    """

    def __init__(self, per_minute: int, *, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.max_keys = max_keys
        self._times: Dict[str, float] = {}
        self._levels: BoundedMap[str, float] = BoundedMap(max_keys, on_evict=lambda key, _: self._times.pop(key))

    def take(self, key: str, tokens: float, now: float) -> Optional[float]:
        """Take ``tokens``; None if they were there, else the seconds until they will be."""
        level = self._levels.get(key)
        level = self.capacity if level is None else min(self.capacity, level + (now - self._times[key]) * self.rate)
        wait = None
        if level < tokens:
            wait = (tokens - level) / self.rate if tokens <= self.capacity else 60.0
        else:
            level -= tokens
        self._times[key] = now
        self._levels.touch(key, level)
        return wait


class RejectionLog:
    """Logs a rejection the first time per (reason, sender) each ``every_s`` seconds."""

    def __init__(self, every_s: float = 60.0, *, max_keys: int = 10_000) -> None:
        self.every_s = every_s
        self.max_keys = max_keys
        self._seen: BoundedMap[Tuple[str, str], Tuple[float, int]] = BoundedMap(max_keys)  # → (logged at, suppressed)

    def reject(self, reason: str, sender: str, message: str, now: float) -> None:
        key = (reason, sender)
        logged_at, suppressed = self._seen.get(key, (None, 0))
        if logged_at is not None and now - logged_at < self.every_s:
            self._seen[key] = (logged_at, suppressed + 1)
            return
        more = f" (and {suppressed} more like it in the last {self.every_s:g} s)" if suppressed else ""
        logger.warning("ingest rejected: reason=%s sender=%s %s%s", reason, sender, message, more)
        self._seen.touch(key, (now, 0))


class IngestGuard:
    def __init__(self, limits: IngestLimits) -> None:
        self.limits = limits
        self._per_ip = TokenBuckets(limits.requests_per_minute_per_ip)
        self._per_user = TokenBuckets(limits.events_per_minute_per_user)
        self._keys = frozenset(limits.project_keys)
        self.log = RejectionLog()

    def admit_request(self, ip: str, now: float) -> None:
        wait = self._per_ip.take(ip or "unknown", 1, now)
        if wait is not None:
            message = f"more than {self.limits.requests_per_minute_per_ip} requests a minute from {ip}"
            self.log.reject("ip_rate", ip, message, now)
            raise RateLimited(message, wait)

    def admit_project(self, batch: CaptureBatch, ip: str, now: float) -> None:
        if not self._keys or batch.api_key in self._keys:
            return  # no keys configured, or posthog-js's envelope with a known one
        keys = _project_keys(batch)
        if not keys or not keys <= self._keys:
            shown = ", ".join(sorted(k[:40] for k in keys)) or "none"
            message = f"project key {shown} is not one of this copilot's (ingest.project_keys)"
            self.log.reject("project_key", ip, message, now)
            raise UnknownProjectKey(message)

    def admit_events(self, actions: Iterable[TrackedAction], ip: str, now: float) -> None:
        per_user: Dict[str, int] = {}
        for tracked in actions:
            per_user[tracked.user_id] = per_user.get(tracked.user_id, 0) + 1
        for user_id, count in per_user.items():
            wait = self._per_user.take(user_id, count, now)
            if wait is not None:
                message = f"user {user_id!r} sent more than {self.limits.events_per_minute_per_user} events a minute"
                self.log.reject("user_rate", user_id, message, now)
                raise RateLimited(message, wait)


def _project_keys(batch: CaptureBatch) -> Set[str]:
    """The envelope's ``api_key``, else each event's ``api_key`` / ``properties.token``."""
    if isinstance(batch.api_key, str) and batch.api_key:
        return {batch.api_key}
    keys: Set[str] = set()
    for raw in batch.events:
        if not isinstance(raw, dict):
            continue
        props: Any = raw.get("properties")
        for key in (raw.get("api_key"), props.get("token") if isinstance(props, dict) else None):
            if isinstance(key, str) and key:
                keys.add(key)
    return keys

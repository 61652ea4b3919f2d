"""Errors the copilot answers a request with. Each carries its HTTP status, so the channel
maps any of them to a response with one lookup (as Starlette's ``HTTPException`` does)."""

from __future__ import annotations

from typing import Dict


class ProactiveError(Exception):
    """A request the copilot cannot serve; the message says what to change."""

    status = 400
    logged = False  # True: whoever raised it has logged it already (once per sender, not per request)

    def headers(self) -> Dict[str, str]:
        return {}


class UnknownUser(ProactiveError, LookupError):
    """No activity is tracked for this user id (yet, or any more)."""

    status = 404


class UnknownTour(ProactiveError, LookupError):
    """The tour id is not in the tour registry of proactive.yml."""

    status = 404


class NoActiveTour(ProactiveError, LookupError):
    """A tour step or end arrived while no tour is running for the user."""

    status = 409


class UnknownChatSession(ProactiveError, LookupError):
    """No chat socket listens on this sender id (often: an app user id passed instead)."""

    status = 404


class ChatNotReady(ProactiveError, RuntimeError):
    """The agent has no model loaded yet, no socketio channel, or a domain without the
    proactive intent."""

    status = 503


class RateLimited(ProactiveError):
    """Too many requests or events; ``retry_after_s`` says when one more would pass."""

    status = 429
    logged = True

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> Dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after_s)))}


class StoreUnavailable(ProactiveError):
    """The shared store (Redis) did not answer; the request may be retried shortly."""

    status = 503
    logged = True  # the store's outage is logged once when it starts, not per request

    def headers(self) -> Dict[str, str]:
        return {"Retry-After": "1"}

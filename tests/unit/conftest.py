"""Shared helpers for the proactive-engine unit tests.

* ``ph`` (a fixture) bundles the helpers below for the test modules.
* ``posthog_event`` builds events shaped like what posthog-js really captures.
* ``to_batch`` runs events through the real ingest path (``parse_capture_payload`` +
  ``normalise_batch``), so tests exercise the same code the capture route uses.
* ``mono`` replaces ``time.monotonic`` *as seen by* autoplay-sdk's ``SessionState`` module
  and by ``addons.offers.gate`` (not globally: asyncio's loop keeps the real clock), so timeouts
  and cooldowns are tested by advancing a fake clock instead of sleeping.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import pytest

import addons.offers.gate
import autoplay_sdk.agent_state.v2.session_state as sdk_session_state
from addons.config import ProactiveConfig, load_config
from addons.offers.engine import ProactiveEngine
from addons.offers.ingest import NormalisedBatch, normalise_batch, parse_capture_payload
from addons.stores.protocols import ClockSkewStore
from posthog_events import BASE_URL, iso, posthog_event  # noqa: F401  (re-exported to the unit tests)

PROACTIVE_YML = Path(__file__).resolve().parents[2] / "rasa-bot" / "proactive.yml"
T0 = 1779188762.919  # 2026-05-19T11:06:02.919Z, the epoch-seconds string posthog sends as "$time"


def save_click(ts: float, **kw: Any) -> Dict[str, Any]:
    return posthog_event("$autocapture", ts=ts, text="Save changes", **kw)


def pageview(path: str, ts: float, **kw: Any) -> Dict[str, Any]:
    return posthog_event("$pageview", ts=ts, path=path, **kw)


def to_batch(
    events: Sequence[Dict[str, Any]],
    *,
    received_at: float,
    sent_at: Optional[float] = None,
    skew: Optional[ClockSkewStore] = None,
) -> NormalisedBatch:
    envelope: Dict[str, Any] = {"api_key": "phc_test", "batch": list(events)}
    if sent_at is not None:
        envelope["sent_at"] = iso(sent_at)
    result = normalise_batch(parse_capture_payload(envelope), received_at=received_at, skew=skew)
    assert not result.rejected, result.rejected  # the helpers only build valid events
    return result


class FakeMonotonic:
    """Stands in for the ``time`` module inside the patched modules (only ``monotonic`` is used)."""

    def __init__(self) -> None:
        # Start at the real reading: SessionState's dataclass default factories captured the real
        # time.monotonic at import time, so fields they fill stay consistent with this clock.
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def mono(monkeypatch: pytest.MonkeyPatch) -> FakeMonotonic:
    clock = FakeMonotonic()
    monkeypatch.setattr(sdk_session_state, "time", clock)
    monkeypatch.setattr(addons.offers.gate, "time", clock)
    return clock


@pytest.fixture
def ph() -> SimpleNamespace:
    """The event helpers, as one fixture: ``ph.save(ts)``, ``ph.pageview(path, ts)``, ``ph.batch(events, received_at=...)``."""
    return SimpleNamespace(
        event=posthog_event, save=save_click, pageview=pageview, batch=to_batch, iso=iso, T0=T0, BASE_URL=BASE_URL
    )


@pytest.fixture(scope="session")
def config() -> ProactiveConfig:
    return load_config(PROACTIVE_YML)


@pytest.fixture
def engine(config: ProactiveConfig, mono: FakeMonotonic) -> ProactiveEngine:
    """The engine built from the real proactive.yml, on the fake monotonic clock."""
    return ProactiveEngine(config, clock=lambda: T0)

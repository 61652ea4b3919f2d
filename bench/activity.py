"""Realistic PostHog activity for the engine benchmarks: what users of the demo app do.

A session is a walk through the app: pageviews, clicks on the dashboard, edits on
/projects (some with "Save changes"), now and then the hidden bulk edit. Seeded, so every
run (and the engine and its baseline within a run) sees the same events.
"""

from __future__ import annotations

import random
import uuid
from typing import Any, Dict, List

from posthog_events import iso

BASE_URL = "http://localhost:3000"
_DASHBOARD_CLICKS = ("Dashboard", "Last 7 days", "Export", "Status", "Projects")
_PROJECT_CLICKS = ("Edit", "Priority", "Status", "Cancel", "Next page", "Save changes", "Save changes")


def event(kind: str, *, ts: float, path: str, user: str, session: str, text: str = "", rng: random.Random) -> Dict[str, Any]:
    """One posthog-js event (the same shape as tests/posthog_events.py, with a seeded uuid)."""
    properties: Dict[str, Any] = {
        "$current_url": BASE_URL + path,
        "$host": "localhost:3000",
        "$pathname": path,
        "$session_id": session,
        "$device_id": f"dev-{user}",
        "$lib": "web",
    }
    if kind == "$autocapture":
        properties["$event_type"] = "click"
        properties["$el_text"] = text
        properties["$elements_chain"] = f'button.btn:attr__class="btn"nth-child="2"nth-of-type="1"text="{text}";body:nth-child="2"'
    return {
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event": kind,
        "distinct_id": user,
        "timestamp": iso(ts),
        "properties": properties,
    }


def session_events(user: str, session: str, *, count: int, end: float, rng: random.Random) -> List[Dict[str, Any]]:
    """``count`` events ending at ``end``, 2–15 s apart: dashboard first, then /projects.

    One session in ten finds bulk edit; the rest save edits one by one, so many have three
    saves in the trigger's window (and fire), others fewer.
    """
    times = []
    t = end
    for _ in range(count):
        times.append(t)
        t -= rng.uniform(2.0, 15.0)
    times.reverse()
    events = []
    switch = max(1, count // 3)
    finds_bulk_edit = rng.random() < 0.1
    for i, ts in enumerate(times):
        path = "/dashboard" if i < switch else "/projects"
        if i in (0, switch):
            events.append(event("$pageview", ts=ts, path=path, user=user, session=session, rng=rng))
            continue
        labels = _DASHBOARD_CLICKS if path == "/dashboard" else _PROJECT_CLICKS
        label = "Bulk edit" if finds_bulk_edit and i == count - 2 else rng.choice(labels)
        events.append(event("$autocapture", ts=ts, path=path, user=user, session=session, text=label, rng=rng))
    rng.shuffle(events[-3:])  # batches arrive out of order
    return events


def one_more(user: str, session: str, *, at: float, rng: random.Random) -> Dict[str, Any]:
    """The next thing an active user does on /projects."""
    return event("$autocapture", ts=at, path="/projects", user=user, session=session,
                 text=rng.choice(_PROJECT_CLICKS), rng=rng)

"""PostHog events shaped like posthog-js sends them, for every test that needs one."""

from __future__ import annotations

import uuid as uuidlib
from datetime import datetime, timezone
from typing import Any, Dict, Optional

BASE_URL = "https://app.example.com"
PROJECT_KEY = "phc_proactive_demo"  # proactive.yml ingest.project_keys; posthog-js sends it as `token`


def iso(ts: float) -> str:
    """posthog-js style ISO timestamp: millisecond precision, trailing Z."""
    text = datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def posthog_event(
    event: str = "$autocapture",
    *,
    ts: float,
    path: str = "/projects",
    text: Optional[str] = None,
    user: str = "user-1",
    session: str = "sess-1",
    ts_format: str = "iso",
    uuid: Optional[str] = None,
    base_url: str = BASE_URL,
    **props: Any,
) -> Dict[str, Any]:
    """One posthog-js event. ``$autocapture`` is a click on an element whose text is ``text``."""
    properties: Dict[str, Any] = {
        "$current_url": base_url + path,
        "$host": base_url.split("://", 1)[-1],
        "$pathname": path.split("?", 1)[0],
        "$session_id": session,
        "$lib": "web",
        "token": PROJECT_KEY,
    }
    if event == "$autocapture":
        properties["$event_type"] = "click"
        if text is not None:
            properties["$el_text"] = text
            properties["$elements_chain"] = (
                f'button.btn.btn-primary:attr__class="btn btn-primary"nth-child="2"nth-of-type="1"text="{text}";'
                'div.card-footer:attr__class="card-footer"nth-child="3"nth-of-type="2";body:nth-child="2"nth-of-type="1"'
            )
    properties.update(props)
    stamp = iso(ts) if ts_format == "iso" else f"{ts:.3f}"
    return {
        "uuid": uuid or str(uuidlib.uuid4()),
        "event": event,
        "distinct_id": user,
        "timestamp": stamp,
        "properties": properties,
    }

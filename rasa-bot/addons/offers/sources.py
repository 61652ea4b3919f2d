"""Events pushed by PostHog's and Autoplay's destinations, in the shapes they really send,
turned into what ingest takes (PostHog events, or tracked actions).

* PostHog's HTTP webhook destination (CDP template "webhook"), default body
  ``{"event": "{event}", "person": "{person}"}``: ``event`` is ``{uuid, event, distinct_id,
  properties, elements_chain, timestamp, url}``, ``person`` is ``{id, properties, name, url}``.
* autoplay-sdk's PostHog destination (``providers/posthog/autoplay_destination.hog``): one flat
  object per event with ``event, referrer, email, timestamp, element_id, event_type,
  session_id, current_url, distinct_id, elements_chain, input_field_name, link_destination,
  button_or_link_text``; absent values are empty strings.
* Autoplay's connector push: an ``ActionsPayload`` (``{"type": "actions", "session_id",
  "user_id", "actions": [SlimAction fields…]}``); ``summary`` payloads carry no actions.

Each event gets an id, so one that arrives twice (a retry, or the same PostHog event by two
routes) is stored once: PostHog's ``uuid`` where the shape has it, else a digest of the event.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Mapping

from autoplay_sdk.core.models import SlimAction

from addons.offers.ingest import (
    CaptureBatch,
    IngestError,
    NormalisedBatch,
    RejectedEvent,
    TrackedAction,
    clean_text,
    parse_timestamp,
    require_identifier,
)
from addons.urls import canonicalize_url

_MAX_TEXT = 200


def posthog_webhook_batch(payload: Any) -> CaptureBatch:
    """PostHog's webhook destination body: one event, its person's properties as ``$set``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), dict):
        raise IngestError("expected PostHog's webhook body: {\"event\": {…}, \"person\": {…}}")
    event = dict(payload["event"])
    properties = event.get("properties")
    properties = dict(properties) if isinstance(properties, dict) else {}
    if isinstance(event.get("elements_chain"), str) and "$elements_chain" not in properties:
        properties["$elements_chain"] = event["elements_chain"]
    person = payload.get("person")
    if isinstance(person, dict) and isinstance(person.get("properties"), dict) and "$set" not in properties:
        properties["$set"] = person["properties"]  # where ingest reads the first name
    event["properties"] = properties
    return CaptureBatch(events=(event,))


def autoplay_destination_batch(payload: Any) -> CaptureBatch:
    """autoplay-sdk's destination body: its flat fields mapped back onto a PostHog event."""
    if not isinstance(payload, dict) or "event" not in payload:
        raise IngestError("expected autoplay-sdk's PostHog destination body (a flat object with 'event')")
    given = {k: v for k, v in payload.items() if v not in ("", None)}  # the template sends '' for absent
    properties = {
        target: given[source]
        for source, target in (
            ("session_id", "$session_id"), ("current_url", "$current_url"), ("event_type", "$event_type"),
            ("elements_chain", "$elements_chain"), ("button_or_link_text", "$el_text"), ("email", "email"),
            ("referrer", "$referrer"),
        )
        if source in given
    }
    event: Dict[str, Any] = {"event": given.get("event"), "distinct_id": given.get("distinct_id"), "properties": properties,
                             "uuid": _digest(payload)}
    if "timestamp" in given:
        event["timestamp"] = given["timestamp"]
    return CaptureBatch(events=(event,))


def connector_batch(payload: Any, *, received_at: float) -> NormalisedBatch:
    """Autoplay's connector push: actions that are already ``SlimAction``-shaped."""
    if not isinstance(payload, dict) or payload.get("type") not in ("actions", "summary"):
        raise IngestError("expected an Autoplay connector payload with type 'actions' or 'summary'")
    if payload["type"] == "summary":
        return NormalisedBatch(actions=(), skipped=1, rejected=())
    raw_actions = payload.get("actions")
    if not isinstance(raw_actions, list):
        raise IngestError("'actions' must be a list")
    actions: List[TrackedAction] = []
    rejected: List[RejectedEvent] = []
    for index, raw in enumerate(raw_actions):
        try:
            actions.append(_connector_action(raw, payload, received_at))
        except IngestError as e:
            rejected.append(RejectedEvent(index=index, reason=str(e)))
    return NormalisedBatch(actions=tuple(actions), skipped=0, rejected=tuple(rejected))


def _connector_action(raw: Any, payload: Mapping[str, Any], received_at: float) -> TrackedAction:
    if not isinstance(raw, dict):
        raise IngestError(f"an action must be an object, got {type(raw).__name__}")
    user_id = require_identifier(payload.get("user_id") or raw.get("user_id"), "user_id")
    session_id = require_identifier(payload.get("session_id") or raw.get("session_id"), "session_id")
    timestamp = parse_timestamp(raw.get("timestamp_start"))
    if timestamp > received_at + 86400.0:
        raise IngestError("timestamp_start is more than a day in the future")
    url = clean_text(raw.get("raw_url"), _MAX_TEXT) or clean_text(raw.get("canonical_url"), _MAX_TEXT)
    title = clean_text(raw.get("title"), _MAX_TEXT) or clean_text(raw.get("type"), _MAX_TEXT) or "action"
    action = SlimAction(
        title=title,
        description=clean_text(raw.get("description"), _MAX_TEXT) or title,
        canonical_url=clean_text(raw.get("canonical_url"), _MAX_TEXT) or canonicalize_url(url),
        type=clean_text(raw.get("type"), _MAX_TEXT) or "action",
        timestamp_start=timestamp,
        timestamp_end=timestamp,
        raw_url=url,
        session_id=session_id,
        user_id=user_id,
        email=clean_text(payload.get("email"), _MAX_TEXT) or None,
    )
    # The connector retries a push on 5xx or timeout: the same action must count once.
    event_id = _digest({"session": session_id, "at": timestamp, "title": title, "type": action.type, "url": url})
    return TrackedAction(user_id=user_id, session_id=session_id, action=action, event_id=event_id)


def _digest(fields: Mapping[str, Any]) -> str:
    """A stable id for an event without one: the digest of its flat fields (nested values
    count by type only, so no input can make hashing it deep or slow)."""
    flat = {str(k)[:100]: v if isinstance(v, (str, int, float, bool)) or v is None else type(v).__name__
            for k, v in fields.items()}
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:32]

"""Events pushed by PostHog's and Autoplay's destinations, in the shapes they really send.

The fixtures follow those projects' own definitions:
* PostHog's HTTP webhook destination (CDP template "webhook"): default body
  ``{"event": "{event}", "person": "{person}"}``, where ``event`` is ``{uuid, event,
  distinct_id, properties, elements_chain, timestamp, url}`` and ``person`` is
  ``{id, properties, name, url}``.
* autoplay-sdk 0.13.0 ``providers/posthog/autoplay_destination.hog``: the flat ``payload``
  object it builds (its 13 fields, '' when absent) and its ``x-posthog-secret`` header.
* autoplay-sdk ``webhook_receiver.py`` / ``core/models.py``: the connector's push, an
  ``ActionsPayload`` dict (``type: actions``) signed ``X-Connector-Signature: sha256=<hmac>``.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from autoplay_sdk.webhook_receiver import WebhookReceiver

from addons.config import EventSources, SourceSecret
from addons.offers.engine import ProactiveEngine
from addons.offers.ingest import CaptureBatch, IngestError, normalise_batch
from addons.offers.sources import autoplay_destination_batch, connector_batch, posthog_webhook_batch
from addons.security.sources import (
    AUTOPLAY_CONNECTOR, AUTOPLAY_DESTINATION, POSTHOG_WEBHOOK, BadSourceSecret, source_auths,
)
from posthog_events import iso, posthog_event

T0 = 1779188762.919
CHAIN = 'button.btn.btn-primary:attr__id="edit-save"attr__type="submit"nth-child="2"nth-of-type="1"text="Save changes";form:nth-child="1"'
AUTOPLAY_HOG = Path(__import__("autoplay_sdk").__file__).parent / "providers" / "posthog" / "autoplay_destination.hog"


def webhook_body(ts: float, *, uuid: str = "0190b2f6-0000-7000-8000-000000000001") -> dict:
    event = posthog_event("$autocapture", ts=ts, text="Save changes", user="u-1", session="s-1", uuid=uuid)
    chain = event["properties"].pop("$elements_chain")
    return {
        "event": {
            "uuid": event["uuid"], "event": event["event"], "distinct_id": "u-1", "properties": event["properties"],
            "elements_chain": chain, "timestamp": iso(ts), "url": "https://eu.posthog.com/project/1/events/x",
        },
        "person": {"id": "p-1", "properties": {"first_name": "Ada", "email": "ada@example.com"}, "name": "Ada",
                   "url": "https://eu.posthog.com/project/1/person/u-1"},
    }


def autoplay_body(ts: float, **overrides: str) -> dict:
    body = {
        "event": "$autocapture", "referrer": "", "email": "ada@example.com", "timestamp": iso(ts),
        "element_id": "edit-save", "event_type": "click", "session_id": "s-1",
        "current_url": "https://app.example.com/projects", "distinct_id": "u-1", "elements_chain": CHAIN,
        "input_field_name": "", "link_destination": "", "button_or_link_text": "Save changes",
    }
    body.update(overrides)
    return body


def test_the_autoplay_fixture_has_exactly_the_fields_its_template_sends():
    template = AUTOPLAY_HOG.read_text()
    payload_block = template[template.index("let payload := {"):template.index("let headers")]
    fields = {line.split("'")[1] for line in payload_block.splitlines() if line.strip().startswith("'")}
    assert fields == set(autoplay_body(T0)) and "'x-posthog-secret'" in template


def test_a_posthog_webhook_event_becomes_the_action_posthog_js_would_have_sent():
    result = normalise_batch(posthog_webhook_batch(webhook_body(T0)), received_at=T0 + 1)
    [tracked] = result.actions
    assert (tracked.user_id, tracked.session_id, tracked.action.title) == ("u-1", "s-1", "Save changes")
    assert tracked.action.timestamp_start == pytest.approx(T0, abs=0.001)
    assert tracked.event_id == "0190b2f6-0000-7000-8000-000000000001"
    assert [p.first_name for p in result.people] == ["Ada"]  # from the person's properties


def test_an_autoplay_destination_event_becomes_an_action_with_a_stable_id():
    first = normalise_batch(autoplay_destination_batch(autoplay_body(T0)), received_at=T0 + 1)
    again = normalise_batch(autoplay_destination_batch(autoplay_body(T0)), received_at=T0 + 5)
    [tracked] = first.actions
    assert (tracked.user_id, tracked.session_id, tracked.action.title) == ("u-1", "s-1", "Save changes")
    assert tracked.action.raw_url == "https://app.example.com/projects"
    assert tracked.event_id and tracked.event_id == again.actions[0].event_id  # a retry is the same event


def test_an_autoplay_event_without_a_session_is_refused_with_the_reason():
    result = normalise_batch(autoplay_destination_batch(autoplay_body(T0, session_id="")), received_at=T0)
    assert result.actions == () and "$session_id" in result.rejected[0].reason


def test_connector_actions_are_taken_as_they_come_and_summaries_skipped():
    payload = {"type": "actions", "product_id": "demo", "session_id": "s-1", "user_id": "u-1", "email": None,
               "actions": [{"title": "Save changes", "description": "User clicked Save changes", "type": "click",
                            "timestamp_start": T0, "raw_url": "https://app.example.com/projects/P-1042"},
                           {"title": "no time"}],
               "count": 2, "forwarded_at": T0 + 1}
    result = connector_batch(payload, received_at=T0 + 2)
    [tracked] = result.actions
    assert tracked.action.canonical_url == "https://app.example.com/projects/:id"
    assert tracked.event_id == connector_batch(payload, received_at=T0 + 9).actions[0].event_id
    assert [r.index for r in result.rejected] == [1]
    assert connector_batch({"type": "summary", "summary": "…"}, received_at=T0).skipped == 1
    with pytest.raises(IngestError):
        connector_batch({"type": "nonsense"}, received_at=T0)


@pytest.mark.parametrize("payload", [None, [], {"event": "x"}, {"event": ["nested"]}, {"event": {"event": 1}}])
def test_what_is_not_a_webhook_body_is_refused_not_raised(payload):
    try:
        batch = posthog_webhook_batch(payload)
    except IngestError:
        return
    normalise_batch(batch, received_at=T0)  # accepted or rejected event by event, never raises


def test_each_source_is_off_until_it_has_a_secret_and_then_checks_it():
    sources = EventSources(posthog_webhook=SourceSecret("file-secret", "X-Proactive-Secret"))
    auths = source_auths(sources, {"PROACTIVE_AUTOPLAY_CONNECTOR_SECRET": "env-secret"})
    assert set(auths) == {POSTHOG_WEBHOOK, AUTOPLAY_CONNECTOR}
    auths[POSTHOG_WEBHOOK].check({"X-Proactive-Secret": "file-secret"}, b"{}")
    for headers in ({}, {"X-Proactive-Secret": "guess"}):
        with pytest.raises(BadSourceSecret) as refused:
            auths[POSTHOG_WEBHOOK].check(headers, b"{}")
        assert refused.value.status == 401
    assert AUTOPLAY_DESTINATION not in source_auths(EventSources(), {})


def test_the_connector_signature_is_the_one_autoplays_own_receiver_accepts():
    auth = source_auths(EventSources(autoplay_connector=SourceSecret("s3cret", "X-Connector-Signature")), {})[AUTOPLAY_CONNECTOR]
    body = b'{"type": "actions", "actions": []}'
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert WebhookReceiver(secret="s3cret").verify(body, signature)  # the SDK's own check agrees
    auth.check({"X-Connector-Signature": signature}, body)
    with pytest.raises(BadSourceSecret):
        auth.check({"X-Connector-Signature": signature}, body + b" ")


def test_the_same_event_by_two_routes_and_a_retry_counts_once(config, mono):
    """posthog-js (tee) and PostHog's webhook destination both deliver the event with its uuid."""
    engine = ProactiveEngine(config, clock=lambda: T0)
    event = posthog_event("$autocapture", ts=T0, text="Save changes", user="u-1", session="s-1", uuid="e-1")
    tee = normalise_batch(CaptureBatch(events=(event,)), received_at=T0 + 1)
    webhook = webhook_body(T0, uuid="e-1")
    engine.ingest(tee, now=T0 + 1)
    for _ in range(2):
        engine.ingest(normalise_batch(posthog_webhook_batch(webhook), received_at=T0 + 2), now=T0 + 2)
    assert len(engine.activity.recent_actions("s-1")) == 1

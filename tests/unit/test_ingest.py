"""Capture bodies in, TrackedActions out: every encoding posthog-js uses, and every way an event is wrong."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from addons.offers.ingest import (
    CaptureBatch,
    IngestError,
    PayloadTooLarge,
    decode_capture_body,
    element_context,
    element_label,
    normalise_batch,
    normalise_event,
    parse_timestamp,
)
from addons.stores.memory import InMemoryClockSkew
from addons.urls import canonicalize_url

T0 = 1779188762.919  # 2026-05-19T11:06:02.919Z
FORM = "application/x-www-form-urlencoded"


def _envelope(ph, n: int = 2) -> dict:
    return {
        "api_key": "phc_demo",
        "batch": [ph.save(T0 + i) for i in range(n)],
        "sent_at": ph.iso(T0 + n),
    }


# -- decode_capture_body ------------------------------------------------------------------


def test_plain_json_single_event_is_one_event(ph):
    event = ph.pageview("/projects", T0)
    batch = decode_capture_body(json.dumps(event).encode(), content_type="application/json")
    assert batch.events == (event,)
    assert batch.sent_at is None and batch.api_key is None


def test_json_list_is_all_its_events_in_order(ph):
    events = [ph.pageview("/projects", T0), ph.save(T0 + 1)]
    batch = decode_capture_body(json.dumps(events).encode(), content_type="application/json")
    assert batch.events == tuple(events)


def test_batch_envelope_keeps_api_key_and_sent_at(ph):
    envelope = _envelope(ph, 3)
    batch = decode_capture_body(json.dumps(envelope).encode(), content_type="application/json")
    assert batch.events == tuple(envelope["batch"])
    assert batch.api_key == "phc_demo"
    assert batch.sent_at == pytest.approx(T0 + 3, abs=1e-3)


def test_gzip_body_sent_as_text_plain_decodes(ph):
    envelope = _envelope(ph)
    body = gzip.compress(json.dumps(envelope).encode())
    batch = decode_capture_body(body, content_type="text/plain")
    assert batch.events == tuple(envelope["batch"])
    assert batch.api_key == "phc_demo"


def test_base64_data_form_field_decodes(ph):
    envelope = _envelope(ph)
    encoded = base64.b64encode(json.dumps(envelope).encode()).decode()
    body = f"data={quote(encoded, safe='')}&compression=base64".encode()
    batch = decode_capture_body(body, content_type=FORM + "; charset=UTF-8")
    assert batch.events == tuple(envelope["batch"])


def test_urlsafe_base64_data_form_field_decodes(ph):
    payload = json.dumps([ph.event(ts=T0, text="Save changes ~~~>>>???")]).encode()
    encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    assert "-" in encoded or "_" in encoded  # the point of this test
    batch = decode_capture_body(f"data={encoded}".encode(), content_type=FORM)
    assert batch.events[0]["properties"]["$el_text"] == "Save changes ~~~>>>???"


def test_curl_json_labelled_as_form_still_parses_as_json(ph):
    event = ph.save(T0)
    body = b"  " + json.dumps(event).encode()
    batch = decode_capture_body(body, content_type=FORM)
    assert batch.events == (event,)


def test_malformed_json_raises_ingest_error():
    with pytest.raises(IngestError, match="not JSON"):
        decode_capture_body(b'{"event": "$pageview",', content_type="application/json")


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 50_000], ids=["arrays", "objects"])
def test_deeply_nested_json_raises_ingest_error_not_recursion_error(body):
    with pytest.raises(IngestError, match="not JSON"):
        decode_capture_body(body, content_type="application/json")


@pytest.mark.parametrize(
    "body",
    [b'{"event": "\xf4\x90\x80\x80"}', b'["\xf5\x80\x80\x80"]', b'{"event": "\xff"}'],
    ids=["beyond-U+10FFFF", "F5-lead-byte", "invalid-byte"],
)
def test_strings_that_are_not_utf8_raise_ingest_error(body):
    # ujson raises SystemError for the first two; they must not escape as a 500.
    with pytest.raises(IngestError, match="not JSON"):
        decode_capture_body(body, content_type="application/json")


def test_a_utf8_byte_order_mark_is_allowed(ph):
    event = ph.save(T0)
    batch = decode_capture_body(b"\xef\xbb\xbf" + json.dumps(event).encode(), content_type="application/json")
    assert batch.events == (event,)


@pytest.mark.parametrize(
    "field,value",
    [("timestamp", "[" * 1020 + "]" * 1020), ("offset", "NaN"), ("offset", "1" + "0" * 400),
     ("timestamp", "1" + "0" * 400), ("timestamp", '"' + "x" * 5000 + '"')],
    ids=["nested-near-the-depth-limit", "nan-offset", "huge-int-offset", "huge-int-timestamp", "long-string"],
)
def test_an_event_with_an_impossible_time_is_rejected_with_a_short_reason(field, value):
    body = '{"event": "$pageview", "distinct_id": "u", "properties": {"$session_id": "s"}, "%s": %s}' % (field, value)
    result = normalise_batch(decode_capture_body(body.encode(), content_type="application/json"), received_at=T0)
    assert result.actions == () and len(result.rejected) == 1
    assert field in result.rejected[0].reason and len(result.rejected[0].reason) < 200


def test_an_impossible_sent_at_is_ignored(ph):
    event = ph.save(T0)
    body = '{"batch": [%s], "sent_at": %s}' % (json.dumps(event), "[" * 1000 + "]" * 1000)
    batch = decode_capture_body(body.encode(), content_type="application/json")
    assert batch.sent_at is None and batch.events == (event,)
    huge = decode_capture_body(('{"batch": [%s], "sent_at": 1%s}' % (json.dumps(event), "0" * 400)).encode(),
                               content_type="application/json")
    assert huge.sent_at is None


def test_empty_body_raises_ingest_error():
    with pytest.raises(IngestError, match="empty body"):
        decode_capture_body(b"", content_type="application/json")


def test_truncated_gzip_raises_ingest_error(ph):
    body = gzip.compress(json.dumps(_envelope(ph, 20)).encode())
    with pytest.raises(IngestError) as info:
        decode_capture_body(body[: len(body) // 2], content_type="text/plain")
    assert not isinstance(info.value, PayloadTooLarge)
    assert "truncated" in str(info.value)


def test_corrupt_gzip_raises_ingest_error(ph):
    body = bytearray(gzip.compress(json.dumps(_envelope(ph, 20)).encode()))
    body[10:30] = b"\xff" * 20  # right after the gzip header: the deflate stream is garbage
    with pytest.raises(IngestError) as info:
        decode_capture_body(bytes(body), content_type="text/plain")
    assert not isinstance(info.value, PayloadTooLarge)


def test_gzip_bomb_raises_payload_too_large():
    bomb = gzip.compress(b'{"event": "' + b"A" * 20_000_000 + b'"}')
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge):
        decode_capture_body(bomb, content_type="text/plain", max_bytes=1_048_576)


def test_plain_body_over_max_bytes_raises_payload_too_large(ph):
    body = json.dumps(_envelope(ph, 50)).encode()
    with pytest.raises(PayloadTooLarge):
        decode_capture_body(body, content_type="application/json", max_bytes=len(body) - 1)
    assert decode_capture_body(body, content_type="application/json", max_bytes=len(body)).events


def test_base64_form_field_expanding_past_max_bytes_raises_payload_too_large(ph):
    payload = json.dumps(_envelope(ph, 50)).encode()
    body = b"data=" + quote(base64.b64encode(payload).decode(), safe="").encode()
    with pytest.raises(PayloadTooLarge):
        decode_capture_body(body, content_type=FORM, max_bytes=len(payload) - 1)


@pytest.mark.parametrize(
    "body, message",
    [
        (b'"just a string"', "expected a JSON object or list"),
        (b"42", "expected a JSON object or list"),
        (b"null", "expected a JSON object or list"),
        (b'{"batch": {"event": "$pageview"}}', "'batch' must be a list"),
        (b'{"api_key": "phc", "data": []}', "expected a PostHog event"),
    ],
)
def test_wrong_top_level_types_raise_ingest_error(body, message):
    with pytest.raises(IngestError, match=message):
        decode_capture_body(body, content_type="application/json")


def test_form_without_data_field_raises_ingest_error():
    with pytest.raises(IngestError, match="no 'data' field"):
        decode_capture_body(b"compression=base64&ver=1.2", content_type=FORM)


def test_form_data_field_with_invalid_base64_raises_ingest_error():
    with pytest.raises(IngestError, match="not valid base64"):
        decode_capture_body(b"data=%21%21not-base64%21%21", content_type=FORM)


# -- normalise_event ----------------------------------------------------------------------


def _one(raw, received_at=T0 + 5):
    tracked = normalise_event(raw, received_at=received_at)
    assert tracked is not None
    return tracked


def test_pageview_becomes_pageview_action_with_ids_and_urls(ph):
    raw = ph.pageview("/projects/P-1042?tab=open#top", T0, user="u-7", session="s-7")
    tracked = _one(raw)
    action = tracked.action
    assert (tracked.user_id, tracked.session_id, tracked.event_id) == ("u-7", "s-7", raw["uuid"])
    assert action.type == "pageview"
    assert action.title == "Page Load: /projects/P-1042"  # $pathname, as the page's name
    assert action.raw_url == "https://app.example.com/projects/P-1042?tab=open#top"
    assert action.canonical_url == "https://app.example.com/projects/:id"
    assert action.timestamp_start == action.timestamp_end == pytest.approx(T0, abs=1e-3)
    assert (action.session_id, action.user_id) == ("s-7", "u-7")


def test_pageview_prefers_document_title(ph):
    raw = ph.pageview("/projects", T0, title="Projects — Acme")
    assert _one(raw).action.title == "Page Load: Projects — Acme"


def test_autocapture_label_comes_from_el_text(ph):
    action = _one(ph.save(T0)).action
    assert action.type == "click"
    assert action.title == "Save changes"
    assert action.description == "User clicked 'Save changes'"


def test_autocapture_label_falls_back_to_first_element_el_text(ph):
    raw = ph.event(ts=T0, **{"$elements": [{"tag_name": "button", "$el_text": "Apply to 3"}, {"tag_name": "div"}]})
    assert _one(raw).action.title == "Apply to 3"


def test_autocapture_label_falls_back_to_first_text_in_elements_chain(ph):
    chain = (
        'span.label:nth-child="1"nth-of-type="1";'
        'button.btn.btn-primary:attr__class="btn btn-primary"attr__id="save"nth-child="2"nth-of-type="1"'
        'text="Save \\"draft\\" changes";form#edit:nth-child="1"'
    )
    raw = ph.event(ts=T0, **{"$elements_chain": chain})
    label = _one(raw).action.title
    assert label == 'Save "draft" changes'


def test_autocapture_label_uses_aria_label_of_first_element_before_a_parent_text(ph):
    chain = 'button.kebab:attr__aria-label="More actions"nth-child="3"nth-of-type="1";div.toolbar:text="Projects"'
    raw = ph.event(ts=T0, **{"$elements_chain": chain})
    assert _one(raw).action.title == "More actions"


def test_autocapture_label_is_never_a_css_selector(ph):
    chain = 'svg.icon.icon-dots:attr__class="icon icon-dots"nth-child="1"nth-of-type="1";button.kebab.btn:nth-child="3"'
    raw = ph.event(ts=T0, **{"$elements_chain": chain})
    label = _one(raw).action.title
    assert label == "svg"
    assert not any(c in label for c in '.:="#;[')


def test_autocapture_without_any_element_info_is_labelled_element(ph):
    assert _one(ph.event(ts=T0)).action.title == "element"


def test_rageclick_is_its_own_kind(ph):
    action = _one(ph.event("$rageclick", ts=T0, **{"$el_text": "Save changes"})).action
    assert action.type == "rageclick"
    assert action.description == "User rage-clicked 'Save changes'"


def test_custom_event_keeps_its_name_as_type_and_label(ph):
    action = _one(ph.event("Project Saved", ts=T0, label="Saved P-1042")).action
    assert action.type == "project saved"
    assert action.title == "Saved P-1042"
    unlabelled = _one(ph.event("report_exported", ts=T0)).action
    assert (unlabelled.type, unlabelled.title) == ("report_exported", "report_exported")


@pytest.mark.parametrize(
    "name", ["$pageleave", "$identify", "$set", "$feature_flag_called", "$web_vitals", "$$heatmap"]
)
def test_noise_events_are_skipped_not_rejected(ph, name):
    assert normalise_event(ph.event(name, ts=T0), received_at=T0) is None
    batch = normalise_batch(CaptureBatch(events=(ph.event(name, ts=T0), ph.save(T0))), received_at=T0 + 1)
    assert (len(batch.actions), batch.skipped, batch.rejected) == (1, 1, ())


def test_distinct_id_inside_properties_is_accepted(ph):
    raw = ph.save(T0)
    raw["properties"]["distinct_id"] = raw.pop("distinct_id")
    assert _one(raw).user_id == "user-1"


# -- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2026-05-19T11:06:02.919Z",
        "2026-05-19T13:06:02.919+02:00",
        "2026-05-19T07:06:02.919-04:00",
        "1779188762.919",
        1779188762919,
        "1779188762919",
        1779188762.919,
    ],
)
def test_every_timestamp_format_parses_to_the_same_epoch_seconds(ph, value):
    assert parse_timestamp(value) == pytest.approx(T0, abs=1e-6)
    raw = ph.save(T0)
    raw["timestamp"] = value
    assert _one(raw).action.timestamp_start == pytest.approx(T0, abs=1e-6)


@pytest.mark.parametrize("value, expected", [("2026-05-19T11:06:02.9Z", T0 - 0.019), ("2026-05-19T11:06:02.919000001Z", T0)])
def test_iso_timestamps_with_any_fraction_length_parse(value, expected):
    assert parse_timestamp(value) == pytest.approx(expected, abs=1e-6)


def test_time_property_is_used_when_timestamp_is_missing(ph):
    raw = ph.save(T0 + 100)
    del raw["timestamp"]
    raw["properties"]["$time"] = T0
    assert _one(raw, received_at=T0 + 200).action.timestamp_start == pytest.approx(T0)


def test_offset_or_nothing_falls_back_to_received_at(ph):
    raw = ph.save(T0)
    del raw["timestamp"]
    assert _one(raw, received_at=T0 + 50).action.timestamp_start == T0 + 50
    raw["offset"] = 1500
    assert _one(raw, received_at=T0 + 50).action.timestamp_start == pytest.approx(T0 + 48.5)


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("yesterday at noon", "neither ISO-8601 nor epoch seconds"),
        (True, "is not a time"),
        (float("nan"), "not finite"),
        ("NaN", "not finite"),
        ("inf", "not finite"),
        (946684799, "before 2000-01-01"),
        ("1999-12-31T23:59:59Z", "before 2000-01-01"),
        (0, "before 2000-01-01"),
        ([T0], "neither ISO-8601 nor epoch seconds"),
        (T0 + 2 * 86400, "more than a day in the future"),
    ],
)
def test_bad_timestamp_is_rejected_with_a_reason_while_the_rest_of_the_batch_is_accepted(ph, bad, reason):
    good_before, good_after = ph.save(T0 - 2), ph.save(T0 - 1)
    broken = ph.save(T0)
    broken["timestamp"] = bad
    result = normalise_batch(CaptureBatch(events=(good_before, broken, good_after)), received_at=T0 + 1)
    assert [a.event_id for a in result.actions] == [good_before["uuid"], good_after["uuid"]]
    assert len(result.rejected) == 1
    assert result.rejected[0].index == 1
    assert reason in result.rejected[0].reason


def test_nan_timestamp_from_real_json_is_rejected(ph):
    body = json.dumps([ph.save(T0), {**ph.save(T0), "timestamp": float("nan")}]).encode()
    assert b"NaN" in body
    result = normalise_batch(decode_capture_body(body), received_at=T0 + 1)
    assert len(result.actions) == 1 and "not finite" in result.rejected[0].reason


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda e: e.pop("distinct_id"), "no distinct_id"),
        (lambda e: e.update(distinct_id="   "), "empty distinct_id"),
        (lambda e: e.update(distinct_id=False), "distinct_id must be a string"),
        (lambda e: e["properties"].pop("$session_id"), "no properties.$session_id"),
        (lambda e: e["properties"].update({"$session_id": ""}), "empty properties.$session_id"),
        (lambda e: e["properties"].update({"$session_id": "x" * 201}), "longer than 200"),
        (lambda e: e.update(properties=["not", "a", "dict"]), "'properties' must be an object"),
        (lambda e: e.pop("event"), "no 'event' name"),
    ],
)
def test_event_without_usable_ids_is_rejected(ph, mutate, reason):
    broken = ph.save(T0)
    mutate(broken)
    result = normalise_batch(CaptureBatch(events=(broken, ph.save(T0), "not an event")), received_at=T0 + 1)
    assert len(result.actions) == 1
    assert [r.index for r in result.rejected] == [0, 2]
    assert reason in result.rejected[0].reason
    assert "must be an object" in result.rejected[1].reason


def test_sent_at_corrects_a_client_clock_one_hour_behind(ph):
    real_click, real_send = T0, T0 + 4.0
    skew = -3600.0  # the browser's clock is an hour behind
    events = [ph.save(real_click + skew), ph.pageview("/projects", real_click - 10 + skew, ts_format="epoch")]
    body = json.dumps({"api_key": "phc", "batch": events, "sent_at": ph.iso(real_send + skew)}).encode()
    result = normalise_batch(decode_capture_body(gzip.compress(body)), received_at=real_send)
    assert [a.action.timestamp_start for a in result.actions] == [
        pytest.approx(real_click, abs=0.01),
        pytest.approx(real_click - 10, abs=0.01),
    ]


def test_sent_at_correction_lets_a_client_clock_days_ahead_through(ph):
    skew = 3 * 86400.0
    result = normalise_batch(
        CaptureBatch(events=(ph.save(T0 + skew),), sent_at=T0 + 1 + skew), received_at=T0 + 1
    )
    assert not result.rejected
    assert result.actions[0].action.timestamp_start == pytest.approx(T0)


def test_a_request_delayed_in_transit_keeps_its_events_at_the_times_they_happened(ph):
    skew = InMemoryClockSkew()
    ph.batch([ph.save(T0)], sent_at=T0 + 0.01, received_at=T0 + 0.03, skew=skew)  # a prompt request
    late = ph.batch([ph.save(T0 + 1)], sent_at=T0 + 1.01, received_at=T0 + 4.0, skew=skew)  # held 3 s on the way
    assert late.actions[0].action.timestamp_start == pytest.approx(T0 + 1.02, abs=0.01)


def test_without_an_estimator_a_delayed_request_is_shifted_like_posthog_does(ph):
    late = ph.batch([ph.save(T0 + 1)], sent_at=T0 + 1.01, received_at=T0 + 4.0)
    assert late.actions[0].action.timestamp_start == pytest.approx(T0 + 3.99, abs=0.01)


def test_clock_skew_estimates_are_per_client(ph):
    skew = InMemoryClockSkew()
    ph.batch([ph.save(T0, user="a", session="sa")], sent_at=T0, received_at=T0, skew=skew)
    behind = ph.batch([ph.save(T0 - 3600, user="b", session="sb")], sent_at=T0 - 3600, received_at=T0, skew=skew)
    assert behind.actions[0].action.timestamp_start == pytest.approx(T0)
    assert len(skew) == 2


def test_a_batch_from_several_clients_gets_no_single_clients_estimate(ph):
    skew = InMemoryClockSkew()
    ph.batch([ph.save(T0, user="a", session="sa")], sent_at=T0 + 3600, received_at=T0, skew=skew)  # "a": an hour ahead
    mixed = ph.batch(
        [ph.save(T0 + 1, user="a", session="sa"), ph.save(T0 + 1, user="b", session="sb")],
        sent_at=T0 + 1, received_at=T0 + 1, skew=skew,
    )
    assert [a.action.timestamp_start for a in mixed.actions] == [pytest.approx(T0 + 1), pytest.approx(T0 + 1)]


def test_clock_skew_estimate_follows_a_client_clock_reset_after_the_window():
    skew = InMemoryClockSkew(window_s=300)
    assert skew.offset("device", 0.05, now=T0) == 0.05
    assert skew.offset("device", 2.0, now=T0 + 10) == 0.05  # slower request: transit, not clock
    assert skew.offset("device", 3600.0, now=T0 + 400) == 3600.0  # the old estimate has expired


def test_clock_skew_forgets_the_least_recently_seen_clients():
    skew = InMemoryClockSkew(max_clients=2)
    for client in ("a", "b", "a", "c"):
        skew.offset(client, 0.0, now=T0)
    assert len(skew) == 2
    assert skew.offset("b", 5.0, now=T0) == 5.0  # "b" was evicted, so this is a fresh estimate


def test_a_sent_at_decades_ahead_does_not_move_events_to_1970(ph):
    # Found by the fuzz test: a millisecond sent_at far in the future made every event's time ~0.
    result = normalise_batch(CaptureBatch(events=(ph.save(T0),), sent_at=3558377602.766), received_at=T0 + 1)
    assert result.actions == () and "before 2000" in result.rejected[0].reason


def test_unparseable_sent_at_is_ignored_not_fatal(ph):
    body = json.dumps({"batch": [ph.save(T0)], "sent_at": "not a time"}).encode()
    batch = decode_capture_body(body)
    assert batch.sent_at is None
    assert normalise_batch(batch, received_at=T0 + 1).actions[0].action.timestamp_start == pytest.approx(T0)


# -- canonicalize_url ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, canonical",
    [
        ("https://app.example.com/projects/P-1042", "https://app.example.com/projects/:id"),
        ("https://app.example.com/projects/P-1042/edit?tab=1#x", "https://app.example.com/projects/:id/edit"),
        ("https://app.example.com/orders/123456/items/7", "https://app.example.com/orders/:id/items/:id"),
        (
            "https://app.example.com/u/5f0c6b1e-2d3a-4c5b-9e8f-0a1b2c3d4e5f/settings",
            "https://app.example.com/u/:id/settings",
        ),
        ("https://app.example.com/runs/0123456789abcdef01", "https://app.example.com/runs/:id"),
        ("https://app.example.com/projects?sort=name", "https://app.example.com/projects"),
        ("https://app.example.com/projects/settings", "https://app.example.com/projects/settings"),
        ("/projects/PRJ_77", "/projects/:id"),
        ("", ""),
    ],
)
def test_canonicalize_url_collapses_ids_and_drops_query_and_fragment(url, canonical):
    assert canonicalize_url(url) == canonical


def test_canonical_urls_of_two_projects_are_equal():
    a = canonicalize_url("https://app.example.com/projects/P-1042?x=1")
    b = canonicalize_url("https://app.example.com/projects/P-2077#notes")
    assert a == b == "https://app.example.com/projects/:id"


# -- labels a person would use, on chains posthog-js really captured on /projects ---------------
# tests/unit/fixtures/elements_chains.json: one capture of tests/browser/test_tee_mode.py
# (Edit, the Priority select, Save changes, the dialog's submit, the ⋯ menu).

CAPTURED_CHAINS = json.loads((Path(__file__).parent / "fixtures" / "elements_chains.json").read_text())


def _captured(event_type: str, el_text=None):
    return next(p for p in CAPTURED_CHAINS if p["$event_type"] == event_type and p["$el_text"] == el_text)


@pytest.mark.parametrize("event_type,el_text,label,context", [
    ("click", "Edit", "Edit", ""),                          # icon + text: the text
    ("click", "Save changes", "Save changes", "Edit P-1042"),  # and the dialog it was pressed in
    ("submit", None, "Edit P-1042", ""),                     # a form: what its dialog is called
    ("click", None, "Table options", ""),                    # the ⋯ icon button: its aria-label
    ("change", None, "edit-priority", "Edit P-1042"),        # a select with no label of its own: its name
])
def test_labels_of_the_apps_real_chains(event_type, el_text, label, context):
    props = _captured(event_type, el_text)
    assert (element_label(props), element_context(props)) == (label, context)


def test_an_icon_inside_a_button_is_called_what_the_button_is_called(ph):
    chain = 'svg.icon:attr__class="icon";button.icon-button:attr__aria-label="Close"attr__type="button";div.toast'
    assert _one(ph.event(ts=T0, **{"$elements_chain": chain})).action.title == "Close"


def test_the_activity_line_says_where_the_click_happened(ph):
    props = {**_captured("click", "Save changes"), "$current_url": "https://app.example.com/projects"}
    action = _one(ph.event(ts=T0, **props)).action
    assert action.title == "Save changes"
    assert action.description == "User clicked 'Save changes' in 'Edit P-1042'"
    submit = _one(ph.event(ts=T0, **{**_captured("submit"), "$event_type": "submit"})).action
    assert submit.description == "User submitted 'Edit P-1042'"

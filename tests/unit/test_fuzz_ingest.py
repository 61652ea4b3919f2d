"""The ingest normaliser on generated input: it accepts or says why (IngestError), nothing else."""

import gzip
import json
import math
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from addons.offers.ingest import IngestError, decode_capture_body, normalise_batch, parse_capture_payload
from addons.stores.memory import InMemoryClockSkew

T0 = 1779188762.919
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30) | st.sampled_from(
    ["$autocapture", "$pageview", "$identify", "Save changes", "2026-05-19T11:07:19.847Z", "1779188762.919",
     "http://localhost:3000/projects?x=1", "", " ", "$$heatmap", 10**400, -(10**400)]
)
KEYS = st.sampled_from(["event", "distinct_id", "properties", "$session_id", "timestamp", "batch", "api_key", "sent_at",
                        "uuid", "$current_url", "$el_text", "$elements_chain", "$elements", "$event_type", "$set",
                        "offset", "$time", "token", "$device_id", "title", "$pathname"]) | st.text(max_size=6)
# `make check` (the inner loop) runs a tenth of the examples; `make test` runs them all.
SCALE = float(os.environ.get("PROACTIVE_FUZZ_SCALE", "1"))


def examples(full: int) -> int:
    return max(100, int(full * SCALE))


JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=8), max_leaves=30)


@st.composite
def posthog_shaped(draw):
    """Mostly-valid events with one part broken at a time: the cases that reach deep code."""
    event = {
        "event": draw(st.sampled_from(["$autocapture", "$pageview", "$identify", "custom"]) | SCALARS),
        "distinct_id": draw(st.sampled_from(["u1", "u2"]) | SCALARS),
        "timestamp": draw(st.sampled_from(["2026-05-19T11:07:19.847Z", "1779188762.919", 1779188762919]) | SCALARS),
        "properties": draw(st.dictionaries(KEYS, JSON, max_size=6) | st.fixed_dictionaries({"$session_id": SCALARS, "$current_url": SCALARS, "$elements": JSON})),
    }
    if draw(st.booleans()):
        event["offset"] = draw(st.sampled_from([1500, 0]) | SCALARS)  # posthog-js's relative time
        del event["timestamp"]
    return {"api_key": "phc", "batch": draw(st.lists(st.just(event) | JSON, max_size=4)), "sent_at": draw(SCALARS)}


@settings(max_examples=examples(3000), deadline=None)
@given(document=JSON | posthog_shaped())
def test_any_json_document_is_accepted_or_refused_with_a_reason(document):
    skew = InMemoryClockSkew()
    try:
        batch = parse_capture_payload(document)
    except IngestError:
        return
    result = normalise_batch(batch, received_at=T0, skew=skew)
    assert len(result.actions) + result.skipped + len(result.rejected) == len(batch.events)
    for tracked in result.actions:
        assert tracked.user_id and tracked.session_id and tracked.action.timestamp_start > 0
        assert math.isfinite(tracked.action.timestamp_start)


@settings(max_examples=examples(2000), deadline=None)
@given(raw=st.binary(max_size=400), content_type=st.sampled_from(["", "text/plain", "application/json", "application/x-www-form-urlencoded"]), wrap=st.sampled_from(["raw", "gzip", "form"]))
def test_any_body_bytes_decode_or_are_refused_with_a_reason(raw, content_type, wrap):
    body = gzip.compress(raw) if wrap == "gzip" else (b"data=" + raw if wrap == "form" else raw)
    try:
        batch = decode_capture_body(body, content_type=content_type, max_bytes=1 << 20)
    except IngestError:
        return
    normalise_batch(batch, received_at=T0)


def test_json_numbers_that_overflow_are_refused_not_raised():
    body = json.dumps({"batch": [{"event": "$pageview", "distinct_id": "u", "timestamp": 1e308,
                                  "properties": {"$session_id": "s"}}]}).encode()
    result = normalise_batch(decode_capture_body(body, content_type="application/json", max_bytes=1 << 20), received_at=T0)
    assert len(result.rejected) == 1

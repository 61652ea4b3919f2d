"""10,000 generated bodies against every route of a real `rasa run`: never a 5xx, the
driver keeps running, and valid events afterwards still fire the trigger."""

import asyncio
import gzip
import hashlib
import hmac
import json
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients import SOURCE_SECRETS, ToastStream, signed, three_saves
from posthog_events import PROJECT_KEY

ROUTES = [
    ("POST", "/e/"),
    ("POST", "/events"),
    ("POST", "/batch/"),
    ("POST", "/inject"),
    ("POST", "/tour/start"),
    ("POST", "/tour/step"),
    ("POST", "/tour/end"),
    ("POST", "/offer/event"),
    ("GET", "/metrics"),
    ("GET", "/insights/funnel"),
    ("GET", "/debug/{user}"),
    ("GET", "/stream/{user}"),
    ("GET", "/health"),
    ("POST", "/sources/posthog_webhook"),
    ("POST", "/sources/autoplay_destination"),
    ("POST", "/sources/autoplay_connector"),
]
TOTAL_BODIES = 10_000

KEYS = st.sampled_from([
    "event", "distinct_id", "properties", "$session_id", "timestamp", "batch", "api_key", "token", "sent_at",
    "uuid", "$current_url", "$el_text", "$elements_chain", "$event_type", "$set", "user_id", "sender_id",
    "body", "tour_id", "trigger_id", "data", "$time", "offset",
    # the destinations' and the connector's own fields
    "person", "elements_chain", "session_id", "current_url", "button_or_link_text", "type", "actions",
    "timestamp_start", "title", "raw_url",
    # the insights' reports
    "offer_id", "reason", "step", "outcome",
])
SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40) | st.sampled_from(["$autocapture", "$pageview", "Save changes", PROJECT_KEY, "bulk_edit_tour",
                                             "2026-05-19T11:07:19.847Z", "1779188762.919", "http://x/projects",
                                             "shown", "dismissed", "escape", "abandoned", "closed",
                                             10**400, -(10**400)])
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS | st.text(max_size=8), inner, max_size=6), max_leaves=25)
USERS = st.sampled_from(["fuzz-user", "u", "x" * 200, "a/b", "ü", "fuzz-user?x=1"]) | st.text(min_size=1, max_size=20)


@st.composite
def bodies(draw):
    """JSON documents (mostly PostHog-ish), raw bytes, gzip, base64-form and truncated JSON."""
    kind = draw(st.sampled_from(["json", "json", "json", "bytes", "gzip", "form", "truncated"]))
    document = draw(JSON)
    text = json.dumps(document, allow_nan=True)
    if kind == "bytes":
        return draw(st.binary(max_size=300)), "application/octet-stream"
    if kind == "gzip":
        return gzip.compress(text.encode()), "text/plain"
    if kind == "form":
        return b"data=" + draw(st.binary(max_size=80)), "application/x-www-form-urlencoded"
    if kind == "truncated":
        return text.encode()[: draw(st.integers(0, max(0, len(text) - 1)))], "application/json"
    return text.encode(), "application/json"


def _source_headers(path: str, body: bytes) -> dict:
    """A push source's secret (the connector's: a signature of this very body)."""
    source = path.rsplit("/", 1)[-1]
    if source == "autoplay_connector":
        digest = hmac.new(SOURCE_SECRETS[source].encode(), body, hashlib.sha256).hexdigest()
        return {"X-Connector-Signature": f"sha256={digest}"}
    return {"X-Proactive-Secret" if source == "posthog_webhook" else "x-posthog-secret": SOURCE_SECRETS[source]}


@pytest.fixture(scope="module")
def http(rasa_server):
    with httpx.Client(base_url=rasa_server.proactive, timeout=10) as client:
        yield client


@pytest.mark.parametrize("path", [path for method, path in ROUTES if method == "POST"])
@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"event":' * 20_000, b'{"batch":' + b"[" * 50_000, b'{"event": "\xf4\x90\x80\x80"}'],
    ids=["arrays", "objects", "batch", "beyond-U+10FFFF"],
)
def test_json_that_cannot_be_decoded_is_a_400(http, path, body):
    # The stdlib's decoder recurses: a few thousand "[" used to raise RecursionError, a 500;
    # ujson raises SystemError on a 4-byte sequence beyond U+10FFFF.
    pushed = _source_headers(path, body) if path.startswith("/sources/") else {}
    response = http.post(path, content=body, headers={"Content-Type": "application/json", **pushed})
    assert response.status_code == 400, response.text
    assert "JSON" in response.json()["error"]


@pytest.mark.parametrize("method,path", ROUTES)
def test_generated_bodies_never_get_a_5xx(http, rasa_server, method, path):
    @settings(max_examples=TOTAL_BODIES // len(ROUTES), deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(body=bodies(), user=USERS, sign=st.booleans())
    def send(body, user, sign):
        content, content_type = body
        url = path.format(user=quote(user, safe=""))
        headers = {"Content-Type": content_type, **(signed(user) if sign else {})}
        if path.startswith("/sources/") and sign:
            headers.update(_source_headers(path, content))
        if path.startswith("/stream/"):
            with http.stream(method, url, headers=headers) as response:
                assert response.status_code < 500, response.read()
            return
        # The funnel reads only its query: the drawn user id goes in as every parameter.
        params = {"from": user, "to": user, "trigger": user} if path == "/insights/funnel" else None
        response = http.request(method, url, content=content if method == "POST" else None, headers=headers, params=params)
        assert response.status_code < 500, (response.status_code, response.text, content[:200])

    send()


def test_after_the_fuzzing_the_driver_runs_and_the_trigger_still_fires(http, rasa_server, user_id, session_id):
    health = http.get("/health").json()
    assert health["driver"]["running"] is True and health["agent_ready"] is True
    assert "Traceback" not in rasa_server.log()

    async def fire():
        async with ToastStream(rasa_server.proactive, user_id) as toast:
            async with httpx.AsyncClient() as client:
                await client.post(f"{rasa_server.proactive}/events", json=three_saves(user_id, session_id))
            return await toast.next_event(timeout=10)

    frame = asyncio.run(fire())
    assert frame is not None and frame["data"]["trigger_id"] == "bulk_edit_opportunity"

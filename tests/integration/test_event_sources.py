"""Every way events come in reaches the toast: PostHog's server SDKs (installed from their
registries by these tests), PostHog's webhook destination, Autoplay's destination and its
connector push. Each event counts once, however it arrives; a wrong secret gets 401."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List

import httpx
import pytest

from clients import SOURCE_SECRETS, ToastStream, signed, three_saves
from posthog_events import PROJECT_KEY
from rasa_server import RasaServer

POSTHOG_PYTHON = "posthog==7.91.1"
POSTHOG_NODE = "posthog-node@5.70.0"


async def _toast_after(server: RasaServer, user_id: str, send: Any) -> Dict[str, Any]:
    async with ToastStream(server.proactive, user_id) as toast:
        await send()
        frame = await toast.next_event(timeout=10)
    assert frame is not None, "no toast"
    assert frame["data"]["trigger_id"] == "bulk_edit_opportunity"
    return frame["data"]


async def _push(server: RasaServer, source: str, body: Any, headers: Dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{server.proactive}/sources/{source}", content=json.dumps(body), headers=headers)


def _webhook(event: Dict[str, Any]) -> Dict[str, Any]:
    """PostHog's webhook destination body for one event (CDP template "webhook" defaults)."""
    properties = dict(event["properties"])
    chain = properties.pop("$elements_chain", "")
    return {
        "event": {"uuid": event["uuid"], "event": event["event"], "distinct_id": event["distinct_id"],
                  "properties": properties, "elements_chain": chain, "timestamp": event["timestamp"],
                  "url": "https://eu.posthog.com/project/1/events/x"},
        "person": {"id": "p", "properties": {"email": "x@example.com"}, "name": "x", "url": "https://eu.posthog.com/person/x"},
    }


def _autoplay(event: Dict[str, Any]) -> Dict[str, Any]:
    """autoplay-sdk's destination body for one event (providers/posthog/autoplay_destination.hog)."""
    props = event["properties"]
    return {
        "event": event["event"], "referrer": "", "email": "", "timestamp": event["timestamp"], "element_id": "",
        "event_type": props.get("$event_type", ""), "session_id": props["$session_id"],
        "current_url": props["$current_url"], "distinct_id": event["distinct_id"],
        "elements_chain": props.get("$elements_chain", ""), "input_field_name": "", "link_destination": "",
        "button_or_link_text": props.get("$el_text", ""),
    }


def _connector(user_id: str, session_id: str) -> bytes:
    """One connector push (an ActionsPayload) with the reference story's actions."""
    now = time.time()
    actions = [{"title": "Page Load: Projects", "description": "User landed on Projects", "type": "pageview",
                "timestamp_start": now - 20, "raw_url": "http://localhost:3000/projects"}]
    actions += [{"title": "Save changes", "description": "User clicked 'Save changes'", "type": "click",
                 "timestamp_start": now - 10 + i, "raw_url": "http://localhost:3000/projects"} for i in range(3)]
    payload = {"type": "actions", "product_id": "demo-app", "session_id": session_id, "user_id": user_id,
               "email": None, "actions": actions, "count": len(actions), "forwarded_at": now}
    return json.dumps(payload).encode()


def _signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SOURCE_SECRETS["autoplay_connector"].encode(), body, hashlib.sha256).hexdigest()


async def _recent_actions(server: RasaServer, user_id: str) -> List[Dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{server.proactive}/debug/{user_id}", headers=signed(user_id))
    return response.json()["recent_actions"]


async def test_posthog_webhook_destination_events_reach_the_toast_and_count_once(rasa_server, user_id, session_id):
    headers = {"X-Proactive-Secret": SOURCE_SECRETS["posthog_webhook"]}
    events = three_saves(user_id, session_id)

    async def send() -> None:
        for event in events:  # the destination posts one event per request
            response = await _push(rasa_server, "posthog_webhook", _webhook(event), headers)
            assert response.status_code == 200, response.text

    await _toast_after(rasa_server, user_id, send)
    retried = await _push(rasa_server, "posthog_webhook", _webhook(events[-1]), headers)  # PostHog retries
    assert retried.status_code == 200
    assert len(await _recent_actions(rasa_server, user_id)) == len(events)


async def test_autoplay_destination_events_reach_the_toast(rasa_server, user_id, session_id):
    headers = {"x-posthog-secret": SOURCE_SECRETS["autoplay_destination"]}

    async def send() -> None:
        for event in three_saves(user_id, session_id):
            response = await _push(rasa_server, "autoplay_destination", _autoplay(event), headers)
            assert response.status_code == 200, response.text

    await _toast_after(rasa_server, user_id, send)


async def test_a_signed_connector_push_reaches_the_toast_and_its_retry_counts_once(rasa_server, user_id, session_id):
    body = _connector(user_id, session_id)

    async def send() -> None:
        async with httpx.AsyncClient() as client:
            for _ in range(2):  # the connector retries after a timeout
                response = await client.post(f"{rasa_server.proactive}/sources/autoplay_connector", content=body,
                                             headers={"X-Connector-Signature": _signature(body)})
                assert response.status_code == 200, response.text

    await _toast_after(rasa_server, user_id, send)
    assert len(await _recent_actions(rasa_server, user_id)) == 4


@pytest.mark.parametrize("source,headers", [
    ("posthog_webhook", {}),
    ("posthog_webhook", {"X-Proactive-Secret": "guess"}),
    ("autoplay_destination", {"x-posthog-secret": SOURCE_SECRETS["posthog_webhook"]}),  # another source's secret
    ("autoplay_connector", {"X-Connector-Signature": "sha256=" + "0" * 64}),
    ("autoplay_connector", {}),
])
async def test_a_push_without_its_sources_secret_is_401_and_logged(rasa_server, user_id, session_id, source, headers):
    response = await _push(rasa_server, source, {"event": "$pageview"}, headers)
    assert response.status_code == 401, response.text
    assert f"POST /webhooks/proactive/sources/{source} -> 401" in rasa_server.log()


async def test_an_unknown_source_is_404(rasa_server):
    response = await _push(rasa_server, "segment", {"event": "x"}, {})
    assert response.status_code == 404 and "posthog_webhook" in response.json()["error"]


# -- PostHog's own server SDKs, installed from their registries ----------------------------


@pytest.fixture(scope="module")
def posthog_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("posthog-python")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(target),
                    POSTHOG_PYTHON], check=True, capture_output=True, timeout=300)
    return target


@pytest.fixture(scope="module")
def posthog_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("npm") is None:
        pytest.fail("npm is needed (make test installs the app with it)")
    folder = tmp_path_factory.mktemp("posthog-node")
    (folder / "package.json").write_text('{"name": "posthog-node-client", "private": true}')
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", POSTHOG_NODE], cwd=folder,
                   check=True, capture_output=True, timeout=300)
    return folder


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
async def test_posthog_python_reaches_the_toast(rasa_server, posthog_python, user_id, session_id, gzip):
    events = three_saves(user_id, session_id)
    script = textwrap.dedent(f"""
        import json, sys
        from datetime import datetime
        from posthog import Posthog
        client = Posthog({PROJECT_KEY!r}, host={rasa_server.proactive!r}, gzip={gzip}, sync_mode=True)
        for e in json.loads(sys.argv[1]):
            client.capture(e["event"], distinct_id=e["distinct_id"], properties=e["properties"],
                           timestamp=datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")), uuid=e["uuid"])
        client.shutdown()
    """)

    async def send() -> None:
        run = subprocess.run([sys.executable, "-c", script, json.dumps(events)], capture_output=True, text=True,
                             timeout=60, env={"PYTHONPATH": str(posthog_python), "PATH": "/usr/bin:/bin"})
        assert run.returncode == 0, run.stderr

    await _toast_after(rasa_server, user_id, send)


async def test_posthog_node_reaches_the_toast(rasa_server, posthog_node, user_id, session_id):
    events = three_saves(user_id, session_id)
    script = textwrap.dedent(f"""
        const {{ PostHog }} = require('posthog-node');
        const client = new PostHog({json.dumps(PROJECT_KEY)}, {{ host: {json.dumps(rasa_server.proactive)}, flushAt: 1, flushInterval: 0 }});
        for (const e of JSON.parse(process.argv[1])) {{
          client.capture({{ distinctId: e.distinct_id, event: e.event, properties: e.properties,
                           timestamp: new Date(e.timestamp), uuid: e.uuid }});
        }}
        client.shutdown().then(() => process.exit(0), (err) => {{ console.error(err); process.exit(1); }});
    """)

    async def send() -> None:
        run = subprocess.run(["node", "-e", script, json.dumps(events)], cwd=posthog_node, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr

    await _toast_after(rasa_server, user_id, send)

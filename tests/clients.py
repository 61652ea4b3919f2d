"""Clients that talk to the server the way the app and rasa-webchat do."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import aiohttp
import httpx
import socketio
from prometheus_client.parser import text_string_to_metric_families

from addons.config import load_config
from addons.security.identity import HEADER, user_hash
from posthog_events import PROJECT_KEY, iso, posthog_event
from rasa_server import BOT

# The demo secret in proactive.yml: the tests sign as the app's server would.
IDENTITY_SECRET = load_config(BOT / "proactive.yml").identity.secret or ""
# The integration server's push sources (proactive.yml `sources`), each with its own secret.
SOURCE_SECRETS = {
    "posthog_webhook": "webhook-secret-for-tests",
    "autoplay_destination": "autoplay-secret-for-tests",
    "autoplay_connector": "connector-secret-for-tests",
}


def signed(user_id: str) -> Dict[str, str]:
    """The header that proves a request is ``user_id``'s."""
    return {HEADER: user_hash(IDENTITY_SECRET, user_id)}


async def inject(proactive: str, sender_id: str, body: str, user_id: str, *, trigger_id: Optional[str] = None,
                 offer_id: Optional[str] = None, timeout: float = 15.0) -> httpx.Response:
    """"Open chat" as the app does it: the offer into the chat session ``sender_id``, signed as ``user_id``."""
    payload = {"sender_id": sender_id, "body": body, "user_id": user_id}
    if trigger_id is not None:
        payload["trigger_id"] = trigger_id
    if offer_id is not None:
        payload["offer_id"] = offer_id
    async with httpx.AsyncClient(timeout=timeout) as client:
        return await client.post(f"{proactive}/inject", json=payload, headers=signed(user_id))


def stream_url(base: str, user_id: str) -> str:
    return f"{base}/stream/{user_id}?user_hash={user_hash(IDENTITY_SECRET, user_id)}"


def app_event(
    user_id: str,
    session_id: str,
    *,
    label: Optional[str] = "Save changes",
    at: Optional[float] = None,
    event: str = "$autocapture",
) -> Dict[str, Any]:
    """An event of the demo app on /projects, as posthog-js captures it."""
    return posthog_event(event, ts=time.time() if at is None else at, text=label, user=user_id,
                         session=session_id, base_url="http://localhost:3000")


def three_saves(user_id: str, session_id: str) -> List[Dict[str, Any]]:
    now = time.time()
    return [app_event(user_id, session_id, at=now - 20, event="$pageview")] + [
        app_event(user_id, session_id, at=now - 10 + i) for i in range(3)
    ]


def posthog_js_body(events: List[Dict[str, Any]]) -> bytes:
    """What posthog-js posts to <api_host>/e/: a gzip envelope sent as text/plain."""
    envelope = {"api_key": PROJECT_KEY, "batch": events, "sent_at": iso(time.time())}
    return gzip.compress(json.dumps(envelope).encode())


def funnel_counts(proactive: str, trigger_id: str = "bulk_edit_opportunity", **headers: str) -> Dict[str, Any]:
    """Today's funnel JSON of one trigger (GET /insights/funnel)."""
    response = httpx.get(f"{proactive}/insights/funnel", params={"trigger": trigger_id}, headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    trigger: Dict[str, Any] = response.json()["triggers"][0]
    return trigger


def metric_samples(proactive: str, **headers: str) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """GET /metrics, read with prometheus_client's own parser: (name, sorted labels) → value."""
    response = httpx.get(f"{proactive}/metrics", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def report_offer(proactive: str, user_id: str, offer_id: str, event: str, reason: Optional[str] = None) -> httpx.Response:
    """What the toast reports (POST /offer/event), signed as the app's browser does."""
    body = {"user_id": user_id, "offer_id": offer_id, "event": event, **({"reason": reason} if reason else {})}
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.post(f"{proactive}/offer/event", json=body, headers=signed(user_id))


class ToastStream:
    """An SSE subscription to /stream/<user_id>, read like EventSource does."""

    def __init__(self, base: str, user_id: str, *, last_event_id: Optional[str] = None) -> None:
        self.url = stream_url(base, user_id)
        self.headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self._session: Optional[aiohttp.ClientSession] = None
        self._response: Optional[aiohttp.ClientResponse] = None

    async def __aenter__(self) -> "ToastStream":
        self._session = aiohttp.ClientSession()
        self._response = await self._session.get(
            self.url, headers=self.headers, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)
        )
        assert self._response.status == 200, await self._response.text()
        assert self._response.headers["Content-Type"].startswith("text/event-stream")
        first = await asyncio.wait_for(self._response.content.readline(), 10)
        assert first.startswith(b"retry:"), first  # the server has subscribed us by now
        # What EventSource would send back: the position it came with, or the cursor a stream
        # without one is given as its first id; then each offer's id.
        self.last_event_id = self.headers.get("Last-Event-ID")
        if self.last_event_id is None:
            cursor = (await asyncio.wait_for(self._response.content.readline(), 10)).decode().rstrip("\n")
            assert cursor.startswith("id: since-"), cursor
            self.last_event_id = cursor[len("id: "):]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._response is not None:
            self._response.close()
        if self._session is not None:
            await self._session.close()

    async def next_event(self, timeout: float) -> Optional[Dict[str, Any]]:
        """The next `event:` frame as {"id", "event", "data"}; None if none arrives in time."""
        assert self._response is not None
        frame: Dict[str, Any] = {}
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            try:
                raw = await asyncio.wait_for(self._response.content.readline(), remaining)
            except asyncio.TimeoutError:
                return None
            if raw == b"":
                return None  # stream closed
            line = raw.decode().rstrip("\n")
            if line == "":
                if "id" in frame:
                    self.last_event_id = frame["id"]
                if "event" in frame:
                    return frame
                frame = {}
            elif line.startswith(":"):
                continue  # heartbeat
            else:
                key, _, value = line.partition(": ")
                frame[key] = json.loads(value) if key == "data" else value


@dataclass
class ChatClient:
    """A python-socketio client speaking rasa-webchat's protocol."""

    url: str
    user_id: str
    sio: socketio.AsyncClient = field(default_factory=socketio.AsyncClient)
    session_id: Optional[str] = None
    bot_messages: "asyncio.Queue[Dict[str, Any]]" = field(default_factory=asyncio.Queue)

    async def connect(self) -> "ChatClient":
        confirmed: "asyncio.Future[str]" = asyncio.get_running_loop().create_future()
        self.sio.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
        # Stamped on arrival: bubble spacing is measured where the widget would see it.
        self.sio.on("bot_uttered", lambda message: self.bot_messages.put_nowait({**message, "received_at": time.monotonic()}))
        # Polling: this venv's aiohttp is too old for engineio's websocket client transport.
        hash_ = user_hash(IDENTITY_SECRET, self.user_id)
        await self.sio.connect(f"{self.url}?user_id={self.user_id}&user_hash={hash_}", socketio_path="/socket.io", transports=["polling"])
        await self.sio.emit("session_request", {"session_id": None})
        self.session_id = await asyncio.wait_for(confirmed, 10)
        return self

    async def say(self, text: str) -> None:
        custom = {"userId": self.user_id, "userHash": user_hash(IDENTITY_SECRET, self.user_id)}
        await self.sio.emit("user_uttered", {"message": text, "customData": custom, "session_id": self.session_id})

    async def next_bot_message(self, timeout: float) -> Optional[Dict[str, Any]]:
        try:
            return await asyncio.wait_for(self.bot_messages.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def close(self) -> None:
        # A graceful polling disconnect waits out the pending long-poll (~30 s); the server
        # still gets the CLOSE packet, so do not wait for the read loop.
        await self.sio.eio.disconnect(abort=True)
        read_loop = self.sio.eio.read_loop_task
        if read_loop is not None:
            read_loop.cancel()

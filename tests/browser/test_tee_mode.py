"""Tee mode: posthog-js keeps reporting to the team's PostHog (here a stand-in capture server
on loopback) and hands every event to the copilot at once. PostHog gets each event exactly
once, with its own batching; the copilot gets each event once and shows the toast."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, List

import pytest
from playwright.sync_api import Browser, Page, Request

from addons.offers.ingest import IngestError, decode_capture_body, element_context, element_label
from app_flows import TOAST_DISMISS_MS, PageProblems, edit_priority, save_to_toast_ms, start_toast_clock, toast
from app_server import AppServer, start_app
from rasa_server import ROOT, RasaServer, free_port

# What the app's pages really send, kept for a look (tests/unit/fixtures/elements_chains.json is one such capture).
CAPTURED = ROOT / "test-artifacts" / "elements_chains.json"


class StandInPostHog:
    """Records what posthog-js sends to PostHog's capture API: every event, by uuid."""

    def __init__(self) -> None:
        self.events: List[Dict] = []
        self.requests = 0
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _cors(self) -> None:
                self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Access-Control-Allow-Headers", "*")
                self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")

            def _answer(self, body: bytes = b'{"status": 1}') -> None:
                self.send_response(200)
                self._cors()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
                self._answer(b"")

            def do_GET(self) -> None:  # noqa: N802
                self._answer(b"{}")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    batch = decode_capture_body(body, content_type=self.headers.get("Content-Type") or "")
                except IngestError:
                    batch = None
                with stand_in._lock:
                    stand_in.requests += 1
                    stand_in.events.extend(e for e in (batch.events if batch else ()) if isinstance(e, dict))
                self._answer()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def uuids(self) -> List[str]:
        with self._lock:
            return [e.get("uuid") for e in self.events]

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def posthog() -> Iterator[StandInPostHog]:
    stand_in = StandInPostHog()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def tee_app(rasa_server: RasaServer, posthog: StandInPostHog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("tee-app"), rasa_url=rasa_server.url,
                       env={"POSTHOG_API_HOST": posthog.url, "TOAST_DISMISS_MS": str(TOAST_DISMISS_MS)})
    yield server
    server.stop()


def _tee_requests(page: Page) -> List[Dict]:
    """Every event the page posts to the copilot's capture route (the tee)."""
    teed: List[Dict] = []

    def on_request(request: Request) -> None:
        if request.method == "POST" and "/webhooks/proactive/e/" in request.url and request.post_data:
            teed.extend(json.loads(request.post_data)["batch"])

    page.on("request", on_request)
    return teed


def test_posthog_gets_every_event_once_and_the_copilot_shows_the_toast(
    browser: Browser, tee_app: AppServer, posthog: StandInPostHog, rasa_server: RasaServer, user_id: str
):
    problems = PageProblems()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "demo_user", "value": user_id, "url": tee_app.url}])
    page = context.new_page()
    page.on("console", problems.on_console)
    page.on("request", problems.on_request)
    teed = _tee_requests(page)
    try:
        page.goto(tee_app.url + "/projects")
        page.wait_for_selector("#rasa-webchat .rw-launcher", timeout=20_000)
        start_toast_clock(page)
        for project_id, priority in (("P-1042", "High"), ("P-1043", "High"), ("P-1044", "Low")):
            edit_priority(page, project_id, priority)
        toast(page).wait_for(timeout=10_000)
        offer_id = toast(page).get_attribute("data-offer-id")
        latency = save_to_toast_ms(page)
        page.click("#projects-table-options")  # an icon button: its name is its aria-label
        page.keyboard.press("Escape")
        print(f"\ntee mode: third save → toast {latency:.0f} ms")
        sent = {e["uuid"] for e in teed}
        deadline = time.monotonic() + 15  # PostHog's copy travels in posthog-js's own batches
        while not (sent <= set(posthog.uuids()) and _named(posthog, "proactive offer shown")) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        context.close()
    uuids = posthog.uuids()
    assert len(uuids) == len(set(uuids)), "PostHog got an event twice"
    assert sent and sent <= set(uuids), "an event reached the copilot but not PostHog"
    teed_uuids = [e["uuid"] for e in teed]
    assert len(teed_uuids) == len(set(teed_uuids)), "the copilot was sent an event twice"
    saves = [e for e in posthog.events if e.get("event") == "$autocapture"
             and e.get("properties", {}).get("$el_text") == "Save changes"]
    assert len(saves) == 3
    assert posthog.requests < len(uuids), "PostHog-bound events should travel in batches"
    assert "proactive offer published" in rasa_server.log()
    # The toast's own report lands in the team's PostHog too, with the offer and its trigger.
    [shown] = _named(posthog, "proactive offer shown")
    assert (shown["properties"]["offer_id"], shown["properties"]["trigger_id"]) == (offer_id, "bulk_edit_opportunity")
    assert problems.console_errors == [] and problems.foreign_requests == []


def _named(posthog: StandInPostHog, event: str) -> list:
    return [e for e in posthog.events if e.get("event") == event]


def test_labels_from_the_apps_own_elements_chains(posthog: StandInPostHog):
    """Runs on what posthog-js really captured on /projects in the test above."""
    clicks = [e["properties"] for e in posthog.events if e.get("event") == "$autocapture"]
    assert clicks, "the test above captured nothing"
    CAPTURED.parent.mkdir(exist_ok=True)
    CAPTURED.write_text(json.dumps([{k: p.get(k) for k in ("$event_type", "$el_text", "$elements_chain")} for p in clicks], indent=1))
    named = {(p.get("$event_type"), element_label(p), element_context(p)) for p in clicks}
    assert ("click", "Edit", "") in named  # icon + text: the text
    assert ("click", "Save changes", "Edit P-1042") in named  # in the dialog it was pressed in
    assert ("submit", "Edit P-1042", "") in named  # a form: called what its dialog is called
    assert ("click", "Table options", "") in named  # the ⋯ icon button: its aria-label
    assert ("change", "edit-priority", "Edit P-1042") in named
    assert not any(label in ("button", "form", "element") for _, label, _ in named)

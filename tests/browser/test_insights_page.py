"""/insights in Chromium: the app's server reads the funnel JSON (with the reader token) from
a `rasa run` with a holdout, and the page shows the same numbers, drawn and written."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from addons.insights.holdout import Holdout
from app_flows import PageProblems
from app_server import AppServer, start_app
from clients import app_event, signed, stream_url, three_saves
from rasa_server import BOT, RasaServer, start_rasa

TRIGGER = "bulk_edit_opportunity"
SEED = "insights-page"
TOKEN = "insights-page-reader-token"
USERS = 36


@pytest.fixture(scope="module")
def measured_rasa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    trigger = yaml.safe_load((BOT / "proactive.yml").read_text())["triggers"][0]
    server = start_rasa(
        tmp_path_factory.mktemp("rasa-insights"),
        proactive_overrides={
            "driver": {"tick_seconds": 60},
            "triggers": [{**trigger, "holdout_pct": 30}],
            "insights": {"holdout_seed": SEED, "token": TOKEN},
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def measured_app(measured_rasa: RasaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("app-insights"), rasa_url=measured_rasa.url,
                       env={"PROACTIVE_INSIGHTS_TOKEN": TOKEN})
    yield server
    server.stop()


def _offer_id(rasa: RasaServer, user: str) -> Optional[str]:
    """The story for one user with a tab open: the offer id its toast got (None: held out)."""
    session = f"s-{user}"
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", stream_url(rasa.proactive, user)) as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("retry:")
            posted = client.post(f"{rasa.proactive}/events", json=three_saves(user, session))
            assert posted.status_code == 200, posted.text
            if Holdout(SEED).holds_out(TRIGGER, user, 30):
                return None  # decided while the ingest request ran: nothing will come
            for line in lines:
                if line.startswith("data: "):
                    offer_id: str = json.loads(line[6:])["offer_id"]
                    return offer_id
    raise AssertionError(f"no toast frame for {user}")


def _populate(rasa: RasaServer) -> None:
    """A small population through the real routes: toasts shown and acted on in every way,
    tours finished or left, the faster way taken more often after a shown toast."""
    outcomes = ["show_me", "open_chat", ("dismissed", "close"), ("dismissed", "escape"), ("dismissed", "timeout"),
                ("dismissed", "navigated")]
    with httpx.Client(timeout=10) as client:
        for n in range(USERS):
            user = f"insights-{n:02d}"
            offer_id = _offer_id(rasa, user)

            def post(path: str, **body: Any) -> None:
                response = client.post(f"{rasa.proactive}{path}", json={"user_id": user, **body}, headers=signed(user))
                assert response.status_code == 200, response.text

            if offer_id is not None:
                post("/offer/event", offer_id=offer_id, event="shown")
                outcome = outcomes[n % len(outcomes)]
                if outcome == "show_me":
                    post("/tour/start", offer_id=offer_id, tour_id="bulk_edit_tour")
                    last = 4 if n % 4 == 0 else 2
                    for step in range(1, last):
                        post("/tour/step", offer_id=offer_id, step=step)
                    end = {"outcome": "completed"} if last == 4 else {"outcome": "abandoned", "reason": "closed"}
                    post("/tour/end", offer_id=offer_id, step=last, **end)
                elif isinstance(outcome, tuple):
                    post("/offer/event", offer_id=offer_id, event=outcome[0], reason=outcome[1])
                else:
                    post("/offer/event", offer_id=offer_id, event=outcome)
            adopts = (n % 3 != 2) if offer_id is not None else (n % 4 == 0)  # two in three shown, one in four held out
            if adopts:
                click = app_event(user, f"s-{user}", label="Apply to 3", at=time.time())
                assert client.post(f"{rasa.proactive}/events", json=[click]).status_code == 200
        for n in range(3):  # the faster way with no offer at all: the baseline
            click = app_event(f"insights-baseline-{n}", "s-baseline", label="Apply to 2", at=time.time())
            assert client.post(f"{rasa.proactive}/events", json=[click]).status_code == 200


def _funnel(rasa: RasaServer) -> Dict[str, Any]:
    response = httpx.get(f"{rasa.proactive}/insights/funnel", params={"trigger": TRIGGER},
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert response.status_code == 200, response.text
    trigger: Dict[str, Any] = response.json()["triggers"][0]
    return trigger


def test_the_insights_page_shows_the_funnel_adoption_lift_and_latency(
    browser: Browser, measured_rasa: RasaServer, measured_app: AppServer, artifacts: Path
) -> None:
    _populate(measured_rasa)
    funnel = _funnel(measured_rasa)
    assert funnel["stages"]["held_out"] > 0 and funnel["stages"]["delivered"] > 0
    assert funnel["adoption"]["lift"]["difference"] is not None

    problems = PageProblems()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "demo_user", "value": "u-1001", "url": measured_app.url}])
    page: Page = context.new_page()
    page.on("console", problems.on_console)
    page.on("request", problems.on_request)
    page.on("requestfailed", problems.on_request_failed)
    try:
        page.goto(f"{measured_app.url}/insights")
        card = page.get_by_test_id(f"trigger-{TRIGGER}")
        expect(card).to_be_visible(timeout=15_000)
        for stage, count in funnel["stages"].items():
            expect(card.get_by_test_id(f"stage-{stage}")).to_have_text(str(count))
        for reason, count in funnel["dismissed"].items():
            expect(card.get_by_test_id(f"dismissed-{reason}")).to_have_text(str(count))
        adoption = funnel["adoption"]
        for group, testid in (("shown", "adoption-shown-rate"), ("held_out", "adoption-held-out-rate")):
            assert float(card.get_by_test_id(testid).get_attribute("data-value") or "nan") == pytest.approx(adoption[group]["rate"])
        expect(card.get_by_test_id("baseline-adoptions")).to_have_text(str(adoption["baseline"]))
        lift = adoption["lift"]
        assert float(card.get_by_test_id("lift-difference").get_attribute("data-value") or "nan") == pytest.approx(lift["difference"])
        interval = card.get_by_test_id("lift-interval")
        assert float(interval.get_attribute("data-low") or "nan") == pytest.approx(lift["low"])
        assert float(interval.get_attribute("data-high") or "nan") == pytest.approx(lift["high"])
        expect(card.get_by_test_id("latency-event-to-toast-count")).to_have_text(
            str(funnel["latency"]["event_to_toast_s"]["count"])
        )
        # The charts were drawn: every canvas has pixels that are not blank.
        canvases = card.locator("canvas")
        assert canvases.count() >= 3
        page.wait_for_function(
            """(n) => [...document.querySelectorAll('canvas')].slice(0, n).every((c) => {
                const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
                return false;
            })""",
            arg=canvases.count(),
        )
        page.wait_for_function("document.getAnimations().every(a => a.playState !== 'running')")
        page.wait_for_timeout(800)  # Chart.js animates on its own clock, outside the Web Animations API
        page.screenshot(path=str(artifacts / "insights.png"), full_page=True)
    finally:
        context.close()
    problems.assert_clean()


def test_without_the_token_the_page_says_what_to_set(
    browser: Browser, measured_rasa: RasaServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    app = start_app(tmp_path_factory.mktemp("app-no-token"), rasa_url=measured_rasa.url)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{app.url}/insights")
        expect(page.get_by_test_id("insights-problem")).to_contain_text("PROACTIVE_INSIGHTS_TOKEN")
        assert TOKEN not in page.content()
    finally:
        context.close()
        app.stop()

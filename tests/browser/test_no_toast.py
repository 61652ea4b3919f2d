"""When the copilot must stay quiet."""

import time
from typing import Callable, List

import httpx
from playwright.sync_api import Page, Route, expect

from app_flows import TOAST_SHOWN, OfferCounts, edit_priority, toast, wait_for_saves
from clients import signed
from rasa_server import RasaServer

CAPTURE_ROUTE = "**/webhooks/proactive/e/**"


def bulk_edit_verdict(rasa: RasaServer, user_id: str) -> dict:
    debug = httpx.get(f"{rasa.proactive}/debug/{user_id}", headers=signed(user_id), timeout=5).json()
    return next(v for v in debug["triggers"] if v["trigger_id"] == "bulk_edit_opportunity")


def test_two_edits_show_no_toast(open_app: Callable[..., Page], rasa_server: RasaServer, user_id: str) -> None:
    page = open_app(user_id)
    edit_priority(page, "P-1042", "High")
    edit_priority(page, "P-1043", "High")
    wait_for_saves(rasa_server, user_id, 2)
    page.wait_for_timeout(1500)  # on-ingest evaluation answers in milliseconds

    expect(toast(page)).to_have_count(0)
    verdict = bulk_edit_verdict(rasa_server, user_id)
    assert verdict["fired"] is False
    assert verdict["reason"].startswith("2 of 3 'save changes' actions on /projects")


def test_three_edits_then_dashboard_shows_no_toast(open_app: Callable[..., Page], rasa_server: RasaServer, user_id: str) -> None:
    """The third save reaches the server only after the user is on /dashboard (a slow
    network, a retried request): the latest action by timestamp is the dashboard pageview,
    so there is nothing to offer — the bulk edit is not on screen."""
    page = open_app(user_id)
    edit_priority(page, "P-1042", "High")
    edit_priority(page, "P-1043", "High")
    wait_for_saves(rasa_server, user_id, 2)

    held: List[Route] = []
    releasing = False

    def hold(route: Route) -> None:
        if releasing:
            route.continue_()
        else:
            held.append(route)

    page.route(CAPTURE_ROUTE, hold)
    edit_priority(page, "P-1044", "High")
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url("**/dashboard")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    _wait_until_quiet(held)
    releasing = True
    for route in reversed(held):  # newest first, each delivered before the next
        route.fulfill(response=route.fetch())
    page.unroute(CAPTURE_ROUTE)

    wait_for_saves(rasa_server, user_id, 3)
    page.wait_for_timeout(1500)
    expect(toast(page)).to_have_count(0)
    verdict = bulk_edit_verdict(rasa_server, user_id)
    assert verdict["fired"] is False
    assert verdict["reason"] == "latest action is on /dashboard, not a /projects page"


def test_leaving_the_page_withdraws_a_shown_toast(open_app: Callable[..., Page], user_id: str, offer_counts: OfferCounts) -> None:
    page = open_app(user_id)
    for project_id in ("P-1042", "P-1043", "P-1044"):
        edit_priority(page, project_id, "Low")
    expect(toast(page)).to_be_visible(timeout=5000)

    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url("**/dashboard")
    expect(toast(page)).to_have_count(0)
    offer_counts.expect({**TOAST_SHOWN, "stages.dismissed": 1, "dismissed.navigated": 1})


def _wait_until_quiet(held: List[Route], quiet_s: float = 1.0, timeout_s: float = 10.0) -> None:
    """posthog-js sends each event as its own request; wait until no new one comes."""
    deadline = time.monotonic() + timeout_s
    count, since = len(held), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if len(held) != count:
            count, since = len(held), time.monotonic()
        elif count and time.monotonic() - since >= quiet_s:
            return
    raise AssertionError(f"capture requests never settled: {count} held")

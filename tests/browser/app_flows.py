"""What a user does in the app, as Playwright steps, and what the server saw of it."""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Request

from clients import funnel_counts, metric_samples, signed
from rasa_server import RasaServer

# The app under test runs with this auto-dismiss: long enough to act on a toast, short
# enough to watch one expire.
TOAST_DISMISS_MS = 6000
TOAST_BODY = (
    "Updating projects one by one? There's a multi-select bulk edit you might not "
    "have seen — want me to show you?"
)
TOUR_TEXTS = [
    "Click the ⋯ icon to open the table-options menu — bulk edit hides here.",
    "Pick “Bulk edit” — checkboxes will appear on every row.",
    "Tick the projects you want to update.",
    "Pick the new priority in the floating toolbar, then click here — all selected projects update at once.",
]


def toast(page: Page) -> Locator:
    return page.locator(".toast-region .toast")


def edit_priority(page: Page, project_id: str, priority: str) -> None:
    """The slow way: Edit → Priority → Save changes, for one project."""
    page.click(f"[data-edit='{project_id}']")
    page.select_option("#edit-priority", priority)
    page.click("#edit-save")
    page.wait_for_selector("dialog.dialog", state="detached")


def priority_of(page: Page, project_id: str) -> str:
    return page.inner_text(f"tr[data-project-id='{project_id}'] .priority")


def start_toast_clock(page: Page) -> None:
    """Records when the next "Save changes" is clicked and when a toast first shows."""
    page.evaluate(
        """() => {
          window.__saveAt = null; window.__toastAt = null;
          document.addEventListener('click', (e) => {
            if (e.target.closest && e.target.closest('#edit-save')) window.__saveAt = performance.now();
          }, {capture: true});
          new MutationObserver((_, observer) => {
            if (document.querySelector('.toast-region .toast')) {
              window.__toastAt = performance.now(); observer.disconnect();
            }
          }).observe(document.body, {childList: true, subtree: true});
        }"""
    )


def save_to_toast_ms(page: Page) -> float:
    page.wait_for_function("window.__toastAt !== null")
    return page.evaluate("window.__toastAt - window.__saveAt")


def saves_seen_by_server(rasa: RasaServer, user_id: str) -> int:
    debug = httpx.get(f"{rasa.proactive}/debug/{user_id}", headers=signed(user_id), timeout=5).json()
    return sum(1 for action in debug["recent_actions"] if action["label"].lower() == "save changes")


def wait_for_saves(rasa: RasaServer, user_id: str, count: int, timeout: float = 10.0) -> None:
    """Waits until the server has ingested `count` saves of this user (so a missing toast
    is a decision, not a lost event)."""
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        try:
            seen = saves_seen_by_server(rasa, user_id)
        except (httpx.HTTPError, KeyError):
            seen = -1
        if seen >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"the server saw {seen} saves of {user_id}, expected {count}")


def log_lines(rasa: RasaServer, pattern: str) -> List[str]:
    return [line for line in rasa.log().splitlines() if re.search(pattern, line)]


def wait_for_log(rasa: RasaServer, pattern: str, count: int = 1, timeout: float = 10.0) -> List[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log_lines(rasa, pattern)
        if len(lines) >= count:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"expected {count} log lines matching {pattern!r}, got {log_lines(rasa, pattern)}")


def settle_animations(page: Page) -> None:
    page.wait_for_function("document.getAnimations().every(a => a.playState !== 'running')")


LOOPBACK = {"127.0.0.1", "localhost"}


class PageProblems:
    """What a page did that it never should: console errors, requests off loopback."""

    def __init__(self) -> None:
        self.console_errors: List[str] = []
        self.foreign_requests: List[str] = []
        self.failed_requests: List[str] = []

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def on_request(self, request: Request) -> None:
        host = urlsplit(request.url).hostname
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in LOOPBACK:
            self.foreign_requests.append(request.url)

    def on_request_failed(self, request: Request) -> None:
        self.failed_requests.append(f"{request.url} {request.failure}")

    def assert_clean(self) -> None:
        assert self.foreign_requests == [], "the app must load nothing from other hosts"
        assert self.console_errors == []
        # Streams and sockets still open when a page navigates or closes end as aborted.
        assert [f for f in self.failed_requests if "net::ERR_ABORTED" not in f] == []


TRIGGER = "bulk_edit_opportunity"
# What a browser story can move, in the funnel JSON's terms (a.b.c paths), and the
# /metrics series that counts the same: (sample name, its labels besides the trigger).
COUNTED_SECTIONS = ("stages.", "dismissed.", "tour.", "follow_up.", "adoption.")
LATENCY_COUNTS = ("latency.event_to_toast_s.count", "latency.click_to_first_bubble_s.count")


def _metric_of(path: str) -> Tuple[str, Tuple[Tuple[str, str], ...]]:
    section, _, rest = path.partition(".")
    if section == "stages":
        return "proactive_offer_stage_total", (("stage", rest),)
    if section == "dismissed":
        return "proactive_offer_dismissed_total", (("reason", rest),)
    if section == "follow_up":
        return "proactive_follow_up_total", (("source", rest),)
    if path.startswith("tour.steps."):
        return "proactive_tour_step_total", (("step", rest.rsplit(".", 1)[1]),)
    if path.startswith("adoption.") and path.endswith(".adopted"):
        return "proactive_adoption_total", (("group", rest.split(".")[0]),)
    if path in LATENCY_COUNTS:
        name = "event_to_toast" if "event_to_toast" in path else "click_to_first_bubble"
        return f"proactive_{name}_seconds_count", ()
    return "", ()


# What any toast that was shown moves, whatever the user then did with it.
TOAST_SHOWN = {
    "stages.fired": 1, "stages.delivered": 1, "stages.shown": 1,
    "adoption.shown.offers": 1, "latency.event_to_toast_s.count": 1,
}


class OfferCounts:
    """The trigger's counts in the funnel JSON and in /metrics since this was made, for
    checking that one browser story moved exactly what it should (and nothing else)."""

    def __init__(self, rasa: RasaServer) -> None:
        self.rasa = rasa
        self.before = self._settled()

    def _read(self) -> Dict[str, float]:
        funnel = funnel_counts(self.rasa.proactive, TRIGGER)
        flat: Dict[str, float] = {}

        def walk(prefix: str, node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(f"{prefix}.{key}" if prefix else str(key), value)
            elif isinstance(node, int) and not isinstance(node, bool):
                flat[prefix] = node

        walk("", funnel)
        counted = {k: v for k, v in flat.items()
                   if (k.startswith(COUNTED_SECTIONS) and not k.endswith("rate")) or k in LATENCY_COUNTS}
        for (name, labels), value in metric_samples(self.rasa.proactive).items():
            if name.endswith(("_total", "_count")) and ("trigger", TRIGGER) in labels:
                counted["metric " + name + " " + ",".join(f"{k}={v}" for k, v in labels if k != "trigger")] = value
        return counted

    def _settled(self) -> Dict[str, float]:
        """Counts once a previous story's last reports (sent as its page closed) are in."""
        previous = self._read()
        for _ in range(20):
            time.sleep(0.3)
            current = self._read()
            if current == previous:
                return current
            previous = current
        return previous

    def changes(self) -> Dict[str, float]:
        after = self._read()
        return {k: v - self.before.get(k, 0) for k, v in after.items() if v != self.before.get(k, 0)}

    def expect(self, changes: Dict[str, int], *, tour_abandoned: Optional[Tuple[str, int]] = None,
               timeout: float = 10.0) -> None:
        """Waits until the funnel moved by exactly ``changes`` and /metrics by the same."""
        wanted: Dict[str, float] = dict(changes)
        for path, delta in changes.items():
            name, labels = _metric_of(path)
            if name:
                wanted["metric " + name + " " + ",".join(f"{k}={v}" for k, v in labels)] = delta
        if tour_abandoned is not None:
            reason, step = tour_abandoned
            wanted[f"metric proactive_tour_abandoned_total reason={reason},step={step}"] = 1
        deadline = time.monotonic() + timeout
        seen = self.changes()
        while seen != wanted and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = self.changes()
        assert seen == wanted, f"counts moved by {seen}, expected {wanted}"


def app_opener(browser: Browser, app_url: str) -> Iterator[Callable[..., Page]]:
    """For a fixture: opens the app at ``app_url`` as a given user in a fresh browser context
    (fresh PostHog session, fresh chat), and checks afterwards that it logged no errors and
    stayed on loopback."""
    contexts = []
    problems = PageProblems()

    def open_as(user: str, path: str = "/projects") -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies([{"name": "demo_user", "value": user, "url": app_url}])
        contexts.append(context)
        page = context.new_page()
        page.on("console", problems.on_console)
        page.on("request", problems.on_request)
        page.on("requestfailed", problems.on_request_failed)
        page.goto(app_url + path)
        # The chat launcher appears once the widget's socket is connected.
        page.wait_for_selector("#rasa-webchat .rw-launcher", timeout=20_000)
        return page

    yield open_as
    for context in contexts:
        context.close()
    problems.assert_clean()

"""What a user does in the app, as Playwright steps, and what the server saw of it."""

from __future__ import annotations

import re
import time
from typing import List
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import ConsoleMessage, Locator, Page, Request

from clients import signed
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

"""Browser tests: the built app (`next start`) and a real `rasa run`, driven in Debian's
headless Chromium by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from app_flows import TOAST_DISMISS_MS, OfferCounts, app_opener
from app_server import AppServer, start_app
from rasa_server import ROOT, RasaServer, start_rasa

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Keep the browser on loopback: no Google services, no DNS for any other host (a stray
# CDN or SaaS URL in the app then fails fast and the request check below catches it).
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def rasa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    # The driver ticks once a minute: a toast within seconds comes from on-ingest evaluation.
    server = start_rasa(tmp_path_factory.mktemp("rasa"), proactive_overrides={"driver": {"tick_seconds": 60}})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def app_server(rasa_server: RasaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(
        tmp_path_factory.mktemp("app"), rasa_url=rasa_server.url, env={"TOAST_DISMISS_MS": str(TOAST_DISMISS_MS)}
    )
    yield server
    server.stop()


# Per module, not per session: while Playwright's sync API runs, its event loop is the running
# loop of the thread, and an async test after it in the same worker could not start its own.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/install-chromium.sh)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir()
    return ARTIFACTS


@pytest.fixture
def offer_counts(rasa_server: RasaServer) -> OfferCounts:
    """The trigger's funnel and /metrics counts as this test starts."""
    return OfferCounts(rasa_server)


@pytest.fixture
def user_id() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def open_app(browser: Browser, app_server: AppServer) -> Iterator[Callable[..., Page]]:
    """Opens the app as a given user (``app_flows.app_opener``)."""
    yield from app_opener(browser, app_server.url)

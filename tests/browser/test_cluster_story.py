"""The reference story in Chromium through nginx in front of two `rasa run` replicas that share
the offers through a real redis-server (`store: redis`): both CTAs."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List

import pytest
from playwright.sync_api import Browser, Page, expect

from app_flows import TOAST_BODY, TOUR_TEXTS, PageProblems, edit_priority, priority_of, toast
from app_server import AppServer, start_app
from cluster_servers import start_replicas
from nginx_server import NginxServer, start_nginx
from rasa_server import RasaServer
from redis_server import RedisServer, start_redis

BOT_BUBBLES = ".rw-messages-container .rw-response"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[List[RasaServer]]:
    redis_server: RedisServer = start_redis(tmp_path_factory.mktemp("story-redis"), appendonly=True)
    replicas = start_replicas(redis_server, tmp_path_factory.mktemp("story-cluster"), 2)
    yield replicas
    for replica in replicas:
        replica.stop()
    redis_server.stop()


@pytest.fixture(scope="module")
def balancer(cluster: List[RasaServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    server = start_nginx(tmp_path_factory.mktemp("story-nginx"), [f"127.0.0.1:{r.port}" for r in cluster])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster_app(balancer: NginxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("story-app"), rasa_url=balancer.url)
    yield server
    server.stop()


@pytest.fixture
def open_cluster_app(browser: Browser, cluster_app: AppServer) -> Iterator[Callable[[str], Page]]:
    contexts = []
    problems = PageProblems()

    def open_as(user: str) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies([{"name": "demo_user", "value": user, "url": cluster_app.url}])
        contexts.append(context)
        page = context.new_page()
        page.on("console", problems.on_console)
        page.on("request", problems.on_request)
        page.on("requestfailed", problems.on_request_failed)
        page.goto(cluster_app.url + "/projects")
        page.wait_for_selector("#rasa-webchat .rw-launcher", timeout=20_000)
        return page

    yield open_as
    for context in contexts:
        context.close()
    problems.assert_clean()



def test_show_me_through_the_balancer(open_cluster_app, cluster, user_id: str, artifacts: Path) -> None:
    page = open_cluster_app(user_id)
    for project_id in ("P-1043", "P-1044", "P-1045"):
        edit_priority(page, project_id, "Urgent")
    expect(toast(page)).to_be_visible(timeout=10_000)
    expect(toast(page).locator(".toast-body")).to_have_text(TOAST_BODY)
    page.click("#toast-show-me")
    popover = page.locator(".driver-popover-description")
    expect(popover).to_have_text(TOUR_TEXTS[0])
    page.click("#projects-table-options")
    expect(popover).to_have_text(TOUR_TEXTS[1])
    page.click("#projects-bulk-edit-toggle")
    expect(popover).to_have_text(TOUR_TEXTS[2])
    page.click("#project-checkbox-P-1042")
    expect(popover).to_have_text(TOUR_TEXTS[3])
    page.select_option("#bulk-priority", "Low")
    page.click("#bulk-apply")
    expect(page.locator(".driver-popover")).to_have_count(0)
    assert priority_of(page, "P-1042") == "Low"
    fired = [r for r in cluster if "proactive trigger firing" in r.log() and f"user={user_id}" in r.log()]
    assert len(fired) == 1  # one replica made the offer, whichever got the third save
    page.screenshot(path=str(artifacts / "cluster-story.png"))


def test_open_chat_through_the_balancer(open_cluster_app, user_id: str) -> None:
    page = open_cluster_app(user_id)
    for project_id in ("P-1046", "P-1047", "P-1048"):
        edit_priority(page, project_id, "High")
    expect(toast(page)).to_be_visible(timeout=10_000)
    page.click("#toast-open-chat")
    expect(page.locator(BOT_BUBBLES).first).to_have_text(TOAST_BODY, timeout=10_000)
    expect(page.locator(BOT_BUBBLES)).to_have_count(2, timeout=10_000)
    expect(page.locator(BOT_BUBBLES).nth(1)).to_contain_text("Here's the faster way, step by step:")

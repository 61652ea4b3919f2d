"""The reference story in Chromium through the cluster `make demo-cluster` starts: nginx in
front of two `rasa run` replicas that share the offers through a real redis-server
(`store: redis`), in production mode with the cluster's own generated secrets; both CTAs."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from app_flows import TOAST_BODY, TOUR_TEXTS, app_opener, edit_priority, priority_of, toast
from cluster.demo import Cluster, start_cluster
from posthog_events import posthog_event

BOT_BUBBLES = ".rw-messages-container .rw-response"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start_cluster(tmp_path_factory.mktemp("demo-cluster"), 2, heartbeat_seconds=1.0)
    yield started
    started.stop()


@pytest.fixture
def open_cluster_app(browser: Browser, cluster: Cluster) -> Iterator[Callable[..., Page]]:
    assert cluster.app is not None
    yield from app_opener(browser, cluster.app.url)


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
    fired = [r for r in cluster.replicas if "proactive trigger firing" in r.log() and f"user={user_id}" in r.log()]
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


def test_the_cluster_runs_in_production_mode_with_its_own_secrets(cluster) -> None:
    secrets = (cluster.redis.log_path.parent.parent / "secrets.env").read_text()
    assert "demo-identity-secret-change-me" not in secrets and "phc_proactive_demo" not in secrets
    for replica in cluster.replicas:
        assert "setting unsafe for production" not in replica.log()
    # No debug route, and the demo's project key is refused.
    assert httpx.get(f"{cluster.balancer.proactive}/debug/u-1001", timeout=5).status_code == 404
    refused = httpx.post(f"{cluster.balancer.proactive}/events",
                         json=[posthog_event(ts=time.time(), user="u-1001", session="s-prod")], timeout=5)
    assert refused.status_code in (401, 403), refused.text


def test_the_replicas_listen_with_a_backlog_for_a_burst_of_reconnects(cluster) -> None:
    """Rasa hands ``SANIC_BACKLOG`` to Sanic: each replica's listening socket has the demo's 4,096
    (or the kernel's cap) as its accept backlog, which ``ss`` shows as Send-Q, not Sanic's 100."""
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    for replica in cluster.replicas:
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{replica.port}"], capture_output=True, text=True,
                                   check=True).stdout.split()
        assert int(listening[2]) == min(4096, somaxconn), listening

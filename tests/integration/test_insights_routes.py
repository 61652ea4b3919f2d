"""Measuring offers against a real `rasa run`: the browser's reports, /metrics read with
prometheus_client's parser, the funnel JSON, the holdout, and bad input."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Dict, Iterator

import httpx
import pytest
import yaml

from addons.insights.holdout import Holdout
from clients import (
    ChatClient, ToastStream, app_event, funnel_counts, inject, metric_samples, report_offer, signed, three_saves,
)
from rasa_server import BOT, RasaServer, start_rasa

TRIGGER = "bulk_edit_opportunity"
HOLDOUT_SEED = "integration-seed"
READER_TOKEN = "reader-token-for-tests"


async def post_events(server: RasaServer, events: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.post(f"{server.proactive}/events", json=events)


async def offer_for(server: RasaServer, user_id: str, session_id: str) -> Dict[str, Any]:
    async with ToastStream(server.proactive, user_id) as toast:
        assert (await post_events(server, three_saves(user_id, session_id))).status_code == 200
        frame = await toast.next_event(timeout=10)
    assert frame is not None
    offer: Dict[str, Any] = frame["data"]
    return offer


def stage(samples: Dict, name: str) -> float:
    return samples.get(("proactive_offer_stage_total", (("stage", name), ("trigger", TRIGGER))), 0.0)


def changed(before: Dict[str, Any], after: Dict[str, Any], section: str) -> Dict[str, int]:
    return {k: after[section][k] - before[section][k] for k in after[section] if after[section][k] != before[section][k]}


async def test_a_shown_and_dismissed_offer_is_in_the_metrics_and_the_funnel(rasa_server, user_id, session_id):
    before, metrics_before = funnel_counts(rasa_server.proactive), metric_samples(rasa_server.proactive)
    offer = await offer_for(rasa_server, user_id, session_id)
    shown = await report_offer(rasa_server.proactive, user_id, offer["offer_id"], "shown")
    assert shown.status_code == 200 and shown.json() == {"status": "ok", "recorded": True}
    again = await report_offer(rasa_server.proactive, user_id, offer["offer_id"], "shown")
    assert again.json()["recorded"] is False
    assert (await report_offer(rasa_server.proactive, user_id, offer["offer_id"], "dismissed", "close")).status_code == 200

    after, metrics_after = funnel_counts(rasa_server.proactive), metric_samples(rasa_server.proactive)
    assert changed(before, after, "stages") == {"fired": 1, "delivered": 1, "shown": 1, "dismissed": 1}
    assert changed(before, after, "dismissed") == {"close": 1}
    assert after["latency"]["event_to_toast_s"]["count"] == before["latency"]["event_to_toast_s"]["count"] + 1
    for name in ("fired", "delivered", "shown", "dismissed"):
        assert stage(metrics_after, name) - stage(metrics_before, name) == 1, name
    histogram = ("proactive_event_to_toast_seconds_count", (("trigger", TRIGGER),))
    assert metrics_after[histogram] - metrics_before.get(histogram, 0) == 1
    assert f"proactive offer dismissed: offer={offer['offer_id']} trigger={TRIGGER} user={user_id} reason=close" in rasa_server.log()


async def test_open_chat_records_the_first_bubble_the_follow_up_and_the_reply(rasa_server, user_id, session_id):
    offer = await offer_for(rasa_server, user_id, session_id)
    before = funnel_counts(rasa_server.proactive)
    assert (await report_offer(rasa_server.proactive, user_id, offer["offer_id"], "open_chat")).status_code == 200
    chat = await ChatClient(rasa_server.url, user_id).connect()
    try:
        response = await inject(rasa_server.proactive, chat.session_id or "", offer["body"], user_id,
                                trigger_id=TRIGGER, offer_id=offer["offer_id"])
        assert response.status_code == 200 and response.json()["follow_up"] is True
        for _ in range(2):  # the question, then the how-to (no model is configured: the fallback)
            assert await chat.next_bot_message(timeout=10) is not None
        await chat.say("thanks, which menu was it?")
        assert await chat.next_bot_message(timeout=10) is not None
    finally:
        await chat.close()
    after = funnel_counts(rasa_server.proactive)
    assert changed(before, after, "stages") == {"open_chat": 1, "follow_up": 1, "replied": 1}
    assert changed(before, after, "follow_up") == {"fallback": 1}
    bubble = after["latency"]["click_to_first_bubble_s"]
    assert bubble["count"] == before["latency"]["click_to_first_bubble_s"]["count"] + 1


async def test_a_tour_reports_its_steps_and_its_end(rasa_server, user_id, session_id):
    offer = await offer_for(rasa_server, user_id, session_id)
    before = funnel_counts(rasa_server.proactive)
    body = {"user_id": user_id, "offer_id": offer["offer_id"]}
    async with httpx.AsyncClient(timeout=5, headers=signed(user_id)) as client:
        base = rasa_server.proactive
        assert (await client.post(f"{base}/tour/start", json={**body, "tour_id": "bulk_edit_tour"})).status_code == 200
        assert (await client.post(f"{base}/tour/step", json={**body, "step": 1})).status_code == 200
        bad = await client.post(f"{base}/tour/end", json={**body, "outcome": "abandoned", "reason": "bored", "step": 2})
        assert bad.status_code == 400  # refused before the tour ends
        end = {**body, "outcome": "abandoned", "reason": "element_missing", "step": 2}
        assert (await client.post(f"{base}/tour/end", json=end)).status_code == 200
    after = funnel_counts(rasa_server.proactive)
    assert changed(before, after, "stages") == {"show_me": 1, "tour_abandoned": 1}
    assert after["tour"]["abandoned"]["element_missing"] == before["tour"]["abandoned"]["element_missing"] + 1
    assert after["tour"]["abandoned_at_step"]["2"] == before["tour"]["abandoned_at_step"].get("2", 0) + 1


async def test_bad_reports_and_queries_get_a_clear_4xx_and_a_log_line(rasa_server, user_id, session_id):
    offer = await offer_for(rasa_server, user_id, session_id)
    url = f"{rasa_server.proactive}/offer/event"
    ok = {"user_id": user_id, "offer_id": offer["offer_id"], "event": "shown"}
    async with httpx.AsyncClient(timeout=5) as client:
        cases = [
            (await client.post(url, content=b"{not json", headers=signed(user_id)), 400),
            (await client.post(url, json=ok), 401),  # unsigned
            (await client.post(url, json={**ok, "user_id": "someone-else"}, headers=signed(user_id)), 403),
            (await client.post(url, json={**ok, "offer_id": "no-such-offer"}, headers=signed(user_id)), 404),
            (await client.post(url, json={**ok, "event": "clicked"}, headers=signed(user_id)), 400),
            (await client.post(url, json={**ok, "event": ["shown"]}, headers=signed(user_id)), 400),
            (await client.post(url, json={**ok, "event": "dismissed", "reason": 7}, headers=signed(user_id)), 400),
            (await client.post(url, json={**ok, "offer_id": "x" * 10_000}, headers=signed(user_id)), 400),
            (await client.get(f"{rasa_server.proactive}/insights/funnel", params={"from": "last week"}), 400),
            (await client.get(f"{rasa_server.proactive}/insights/funnel", params={"trigger": "nope"}), 400),
        ]
    assert [r.status_code for r, _ in cases] == [status for _, status in cases], [r.text for r, _ in cases]
    assert all("error" in r.json() for r, _ in cases)
    assert f"POST /webhooks/proactive/offer/event -> 404: no offer 'no-such-offer' is followed for user {user_id!r}" in rasa_server.log()
    assert "-> 500" not in rasa_server.log()


# -- a server with a holdout and a reader token ----------------------------------------------------


@pytest.fixture(scope="module")
def holdout_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    config = {"holdout_pct": 50, "adopted": {"action": {"label": ["apply to"], "kind": ["click"]}, "within_s": 600}}
    triggers = yaml.safe_load((BOT / "proactive.yml").read_text())["triggers"]
    server = start_rasa(
        tmp_path_factory.mktemp("rasa-holdout"),
        proactive_overrides={
            "driver": {"tick_seconds": 60},
            "triggers": [{**triggers[0], **config}],
            "insights": {"holdout_seed": HOLDOUT_SEED, "token": READER_TOKEN},
        },
    )
    yield server
    server.stop()


def users_in(group: str, count: int) -> list:
    holdout, users = Holdout(HOLDOUT_SEED), []
    while len(users) < count:
        user = f"hold-{uuid.uuid4().hex[:8]}"
        if holdout.holds_out(TRIGGER, user, 50) == (group == "held_out"):
            users.append(user)
    return users


async def test_held_out_users_never_get_a_toast_yet_their_adoption_is_counted(holdout_server):
    reader = {"Authorization": f"Bearer {READER_TOKEN}"}
    before = funnel_counts(holdout_server.proactive, **reader)
    held, shown = users_in("held_out", 3), users_in("shown", 2)
    for user in held + shown:
        session = f"s-{user}"
        async with ToastStream(holdout_server.proactive, user) as toast:
            assert (await post_events(holdout_server, three_saves(user, session))).status_code == 200
            frame = await toast.next_event(timeout=3 if user in held else 10)
        assert (frame is None) == (user in held), user
        apply = app_event(user, session, label="Apply to 3", at=time.time())
        assert (await post_events(holdout_server, [apply])).status_code == 200
    after = funnel_counts(holdout_server.proactive, **reader)
    assert changed(before, after, "stages") == {"fired": 5, "held_out": 3, "delivered": 2, "adopted": 5}
    assert after["adoption"]["held_out"]["adopted"] - before["adoption"]["held_out"]["adopted"] == 3
    assert after["adoption"]["shown"]["adopted"] - before["adoption"]["shown"]["adopted"] == 2
    assert after["adoption"]["lift"]["method"].startswith("difference of adoption rates")
    for user in held:
        assert re.search(rf"proactive offer held out: offer=\w+ trigger={TRIGGER} user={user}\b", holdout_server.log())


async def test_with_a_token_the_insights_need_it(holdout_server):
    base = holdout_server.proactive
    async with httpx.AsyncClient(timeout=5) as client:
        for path in ("/metrics", "/insights/funnel"):
            refused = await client.get(base + path)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
            wrong = await client.get(base + path, headers={"Authorization": "Bearer not-it"})
            assert wrong.status_code == 401
            assert (await client.get(base + path, headers={"Authorization": f"Bearer {READER_TOKEN}"})).status_code == 200

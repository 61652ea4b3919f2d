"""The proactive loop against a real `rasa run`: events in, toast frame out, chat, tours."""

import asyncio
import base64
import json
import re
from typing import List
from urllib.parse import quote

import httpx
import pytest

from clients import ChatClient, ToastStream, app_event, inject, posthog_js_body, signed, stream_url, three_saves

BODY = (
    "Updating projects one by one? There's a multi-select bulk edit you might not have seen "
    "— want me to show you?"
)


async def post_events(server, events, **kwargs):
    async with httpx.AsyncClient() as client:
        return await client.post(f"{server.proactive}/events", json=events, **kwargs)


async def fire_offer(server, user_id, session_id):
    """Run the reference story and return the toast frame."""
    async with ToastStream(server.proactive, user_id) as toast:
        response = await post_events(server, {"batch": three_saves(user_id, session_id)})
        assert response.status_code == 200, response.text
        frame = await toast.next_event(timeout=10)
    assert frame is not None, "no toast frame arrived"
    return frame


async def test_third_save_sends_toast_frame_without_waiting_for_a_tick(rasa_server, user_id, session_id):
    frame = await fire_offer(rasa_server, user_id, session_id)
    assert frame["event"] == "proactive"
    offer = frame["data"]
    assert frame["id"] == offer["offer_id"]
    assert offer["trigger_id"] == "bulk_edit_opportunity"
    assert offer["body"] == BODY
    assert offer["session_id"] == session_id
    assert offer["tours"] == [{"id": "bulk_edit_tour", "flow_id": "bulk-edit-projects", "label": "Show me bulk edit"}]
    log = rasa_server.log()
    firing = log.index(f"proactive trigger firing: trigger=bulk_edit_opportunity session={session_id} user={user_id}")
    published = log.index(f"user={user_id} subscribers=1")
    assert firing < published


async def test_two_saves_send_no_toast(rasa_server, user_id, session_id):
    async with ToastStream(rasa_server.proactive, user_id) as toast:
        await post_events(rasa_server, three_saves(user_id, session_id)[:3])
        assert await toast.next_event(timeout=1.5) is None
    async with httpx.AsyncClient() as client:
        debug = (await client.get(f"{rasa_server.proactive}/debug/{user_id}", headers=signed(user_id))).json()
    verdict = debug["triggers"][0]
    assert verdict["fired"] is False and verdict["reason"].startswith("2 of 3")


async def test_posthog_js_gzip_capture_fires_the_toast(rasa_server, user_id, session_id):
    async with ToastStream(rasa_server.proactive, user_id) as toast:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{rasa_server.proactive}/e/?ver=1.449.2",
                content=posthog_js_body(three_saves(user_id, session_id)),
                headers={"Content-Type": "text/plain"},
            )
        assert response.status_code == 200 and response.json()["accepted"] == 4
        frame = await toast.next_event(timeout=10)
    assert frame is not None and frame["data"]["body"] == BODY


async def test_base64_form_capture_is_accepted(rasa_server, user_id, session_id):
    data = base64.b64encode(json.dumps({"batch": three_saves(user_id, session_id)}).encode()).decode()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{rasa_server.proactive}/e/?compression=base64",
            content=f"data={quote(data)}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200 and response.json()["accepted"] == 4


async def test_inject_reaches_the_widget_session_as_bot_uttered(rasa_server, user_id):
    chat = await ChatClient(rasa_server.url, user_id).connect()
    try:
        response = await inject(rasa_server.proactive, chat.session_id, BODY, user_id, trigger_id="bulk_edit_opportunity")
        assert response.status_code == 200, response.text
        message = await chat.next_bot_message(timeout=10)
        assert message is not None and message["text"] == BODY
        assert f"proactive injected question: sender={chat.session_id}" in rasa_server.log()
    finally:
        await chat.close()


async def test_inject_with_the_app_user_id_is_refused_and_reaches_nobody(rasa_server, user_id):
    chat = await ChatClient(rasa_server.url, user_id).connect()
    try:
        response = await inject(rasa_server.proactive, user_id, BODY, user_id)
        assert response.status_code == 404
        assert "chat_session" in response.json()["error"]
        assert await chat.next_bot_message(timeout=1.5) is None
    finally:
        await chat.close()


async def test_chat_message_marks_session_reactive_and_blocks_offers(rasa_server, user_id, session_id):
    async with httpx.AsyncClient() as client:
        await client.post(f"{rasa_server.proactive}/events", json=[app_event(user_id, session_id, event="$pageview")])
    chat = await ChatClient(rasa_server.url, user_id).connect()
    try:
        await chat.say("hello")
        reply = await chat.next_bot_message(timeout=10)
        assert reply is not None and reply["text"]  # the bot answered the greeting
        async with ToastStream(rasa_server.proactive, user_id) as toast:
            await post_events(rasa_server, three_saves(user_id, session_id))
            assert await toast.next_event(timeout=1.5) is None
    finally:
        await chat.close()
    async with httpx.AsyncClient() as client:
        debug = (await client.get(f"{rasa_server.proactive}/debug/{user_id}", headers=signed(user_id))).json()
    assert debug["state"]["state"] == "reactive_assistance"
    assert debug["gate"] == {"open": False, "reason": "v2_state_reactive_assistance"}
    assert debug["triggers"][0]["fired"] is True  # the pattern is there; the gate held it back


async def test_empty_chat_message_gets_no_reply(rasa_server, user_id):
    chat = await ChatClient(rasa_server.url, user_id).connect()
    try:
        await chat.say("")
        await chat.say("   ")
        assert await chat.next_bot_message(timeout=2) is None
    finally:
        await chat.close()


async def test_tour_start_step_end_are_visible_in_debug(rasa_server, user_id, session_id):
    await fire_offer(rasa_server, user_id, session_id)
    base = rasa_server.proactive
    async with httpx.AsyncClient() as client:
        started = await client.post(f"{base}/tour/start", json={"user_id": user_id, "tour_id": "bulk_edit_tour"}, headers=signed(user_id))
        assert started.json() == {"tour_id": "bulk_edit_tour", "flow_id": "bulk-edit-projects", "session_id": session_id}
        state = (await client.get(f"{base}/debug/{user_id}", headers=signed(user_id))).json()["state"]
        assert state["visual_guidance_active"] is True
        assert state["active_tour"]["tour_id"] == "bulk_edit_tour"
        assert state["interaction_timeout_s"] == 10.0
        for _ in range(3):
            assert (await client.post(f"{base}/tour/step", json={"user_id": user_id}, headers=signed(user_id))).status_code == 200
        assert (await client.post(f"{base}/tour/end", json={"user_id": user_id}, headers=signed(user_id))).status_code == 200
        state = (await client.get(f"{base}/debug/{user_id}", headers=signed(user_id))).json()["state"]
        assert state["visual_guidance_active"] is False and state["active_tour"] is None
        assert (await client.post(f"{base}/tour/step", json={"user_id": user_id}, headers=signed(user_id))).status_code == 409
    assert f"proactive tour started: tour=bulk_edit_tour flow=bulk-edit-projects user={user_id}" in rasa_server.log()


BAD_REQUESTS = [
    ("POST", "/events", b"{not json", {}, 400),
    ("POST", "/events", b"\x1f\x8b\x08\x00garbage", {}, 400),
    ("POST", "/events", b'"a string"', {"Content-Type": "application/json"}, 400),
    ("POST", "/events", b'{"batch": 42}', {"Content-Type": "application/json"}, 400),
    ("POST", "/events", b'[{"event": "$pageview", "api_key": "phc_proactive_demo", "distinct_id": "u", "timestamp": "yesterday", "properties": {"$session_id": "s"}}]', {}, 400),
    ("POST", "/events", b'[{"event": "$pageview", "api_key": "phc_proactive_demo", "distinct_id": ["u"], "properties": {"$session_id": "s"}}]', {}, 400),
    ("POST", "/events", b'[{"event": "$pageview", "api_key": "phc_proactive_demo", "distinct_id": "u", "properties": "oops"}]', {}, 400),
    ("POST", "/e/", b"data=%%%not-base64", {"Content-Type": "application/x-www-form-urlencoded"}, 400),
    ("POST", "/events", b"[" + b"1," * 600_000 + b"1]", {"Content-Type": "application/json"}, 413),
    ("POST", "/inject", b"{}", {}, 400),
    ("POST", "/inject", b'{"sender_id": 5.5, "body": "hi"}', {}, 400),
    ("POST", "/inject", b'{"sender_id": "abc", "body": ""}', {}, 400),
    ("POST", "/tour/start", b'{"user_id": "nobody-here", "tour_id": "bulk_edit_tour"}', signed("nobody-here"), 404),
    ("POST", "/tour/start", b'{"user_id": "x"}', signed("x"), 400),
    ("POST", "/tour/step", b"[]", {}, 400),
    ("POST", "/tour/end", b"", {}, 400),
    ("GET", "/debug/nobody-here", b"", signed("nobody-here"), 404),
    ("GET", "/stream/" + "x" * 300, b"", {}, 400),
]


@pytest.mark.parametrize("method,path,body,headers,status", BAD_REQUESTS)
async def test_bad_input_gets_a_clear_4xx(rasa_server, method, path, body, headers, status):
    async with httpx.AsyncClient() as client:
        response = await client.request(method, rasa_server.proactive + path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]
    assert re.search(rf"{method} /webhooks/proactive{re.escape(path[:40])}.* -> {status}", rasa_server.log())


async def test_server_still_fires_after_bad_input(rasa_server, user_id, session_id):
    async with httpx.AsyncClient() as client:
        for method, path, body, headers, _ in BAD_REQUESTS:
            await client.request(method, rasa_server.proactive + path, content=body, headers=headers)
        health = (await client.get(f"{rasa_server.proactive}/health")).json()
    assert health["driver"]["running"] is True
    frame = await fire_offer(rasa_server, user_id, session_id)
    assert frame["data"]["body"] == BODY


async def test_mixed_batch_keeps_the_good_events(rasa_server, user_id, session_id):
    good = app_event(user_id, session_id)
    bad = dict(app_event(user_id, session_id), timestamp="not a time")
    response = await post_events(rasa_server, {"batch": [good, bad]})
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["index"] == 1


async def test_closing_a_stream_leaves_no_subscriber(rasa_server, user_id):
    for _ in range(5):
        async with ToastStream(rasa_server.proactive, user_id):
            pass
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            subscribers = (await client.get(f"{rasa_server.proactive}/health")).json()["subscribers"]
            if subscribers == 0:
                break
            await asyncio.sleep(0.1)
    assert subscribers == 0


async def _first_block(server, user_id: str, **headers: str) -> List[str]:
    """The stream's lines up to its first blank one, as EventSource reads them."""
    lines: List[str] = []
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", stream_url(server.proactive, user_id), headers=headers) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line == "":
                    return lines
                lines.append(line)
    return lines


async def test_a_stream_without_a_position_gets_a_cursor_and_one_with_a_position_keeps_it(rasa_server, user_id, session_id):
    [retry, cursor] = await _first_block(rasa_server, user_id)
    assert retry == "retry: 3000" and re.fullmatch(r"id: since-[0-9]+", cursor), cursor
    frame = await fire_offer(rasa_server, user_id, session_id)
    # Back with its cursor, or an offer's id: no new cursor, which would come before the
    # offers it replays and skip them at the next reconnect.
    assert await _first_block(rasa_server, user_id, **{"Last-Event-ID": cursor[len("id: "):]}) == ["retry: 3000"]
    assert await _first_block(rasa_server, user_id, **{"Last-Event-ID": frame["id"]}) == ["retry: 3000"]

"""Path B: three one-by-one edits → toast → "Open chat" → the widget's first bubble is the question."""

import json
from typing import Callable

import httpx

from playwright.sync_api import Page, expect

from app_flows import TOAST_BODY, TOAST_SHOWN, OfferCounts, edit_priority, toast, wait_for_log
from clients import signed
from rasa_server import RasaServer

BOT_BUBBLES = ".rw-messages-container .rw-response"


def test_open_chat_opens_the_widget_with_the_proactive_question_first(
    open_app: Callable[..., Page], rasa_server: RasaServer, user_id: str, offer_counts: OfferCounts
) -> None:
    page = open_app(user_id)
    for project_id in ("P-1043", "P-1044", "P-1045"):
        edit_priority(page, project_id, "Urgent")
    expect(toast(page)).to_be_visible(timeout=5000)

    page.click("#toast-open-chat")

    expect(page.locator(".rw-widget-container")).to_have_class("rw-widget-container rw-chat-open")
    expect(toast(page)).to_have_count(0)
    expect(page.locator(BOT_BUBBLES).first).to_have_text(TOAST_BODY, timeout=10_000)
    # Nothing before it: no greeting, no echo of a user message.
    expect(page.locator(".rw-messages-container .rw-message").first).to_have_text(TOAST_BODY)
    expect(page.locator(".rw-messages-container .rw-client")).to_have_count(0)

    # Bubble 2: the follow-up. No model is configured here, so it is the how-to as written.
    expect(page.locator(BOT_BUBBLES)).to_have_count(2, timeout=10_000)
    follow_up = page.locator(BOT_BUBBLES).nth(1)
    expect(follow_up).to_contain_text("Here's the faster way, step by step:")
    expect(follow_up).to_contain_text("Click \"Apply to N\" — all selected projects update in one shot.")
    expect(follow_up).not_to_contain_text("Sure,")  # no name is known for this user: none invented

    # It went to the widget's socket session (Rasa's sender id), not to the app user id.
    sender_id = json.loads(page.evaluate("sessionStorage.getItem('chat_session')"))["session_id"]
    assert sender_id and sender_id != user_id
    wait_for_log(rasa_server, rf"proactive injected question: sender={sender_id} user={user_id} trigger=bulk_edit_opportunity")
    wait_for_log(rasa_server, rf"proactive injected follow-up: sender={sender_id} trigger=bulk_edit_opportunity")

    # The user answers in the chat: the offer's funnel has Open chat, the follow-up (the how-to,
    # no model here), the reply, and the click → first bubble time.
    page.fill(".rw-new-message", "thanks, where is that menu?")
    page.keyboard.press("Enter")
    expect(page.locator(BOT_BUBBLES)).to_have_count(3, timeout=10_000)
    offer_counts.expect({
        **TOAST_SHOWN, "stages.open_chat": 1, "stages.follow_up": 1, "follow_up.fallback": 1, "stages.replied": 1,
        "latency.click_to_first_bubble_s.count": 1,
    })


def test_open_chat_follow_up_greets_a_known_user_by_first_name(open_app: Callable[..., Page]) -> None:
    page = open_app("u-1003")  # Priya Natarajan in the app's team: posthog-js identifies her by name
    for project_id in ("P-1050", "P-1051", "P-1052"):
        edit_priority(page, project_id, "Low")
    page.click("#toast-open-chat", timeout=5000)
    expect(page.locator(BOT_BUBBLES).first).to_have_text(TOAST_BODY, timeout=10_000)
    expect(page.locator(BOT_BUBBLES).nth(1)).to_contain_text("Sure, Priya! Here's the faster way", timeout=10_000)


def test_every_page_load_starts_a_fresh_chat(open_app: Callable[..., Page], user_id: str) -> None:
    page = open_app(user_id)
    page.wait_for_function("JSON.parse(sessionStorage.getItem('chat_session') || '{}').session_id")
    first = json.loads(page.evaluate("sessionStorage.getItem('chat_session')"))["session_id"]
    page.reload()
    page.wait_for_selector("#rasa-webchat .rw-launcher")
    page.wait_for_function(
        "(old) => { const s = JSON.parse(sessionStorage.getItem('chat_session') || '{}').session_id; return s && s !== old; }",
        arg=first,
    )


def test_another_user_cannot_write_into_this_widgets_chat(
    open_app: Callable[..., Page], rasa_server: RasaServer, user_id: str
) -> None:
    """The widget's socket proved its user at connect, so its chat session is that user's."""
    page = open_app(user_id)
    page.wait_for_function("JSON.parse(sessionStorage.getItem('chat_session') || '{}').session_id")
    sender_id = json.loads(page.evaluate("sessionStorage.getItem('chat_session')"))["session_id"]
    intruder = "someone-else"
    response = httpx.post(
        f"{rasa_server.proactive}/inject",
        json={"sender_id": sender_id, "body": "Click here to win", "user_id": intruder},
        headers=signed(intruder),
        timeout=10,
    )
    assert response.status_code == 403
    assert response.json()["error"] == f"chat session {sender_id!r} belongs to another user"
    page.click("#rasa-webchat .rw-launcher")
    page.wait_for_timeout(1000)
    expect(page.locator(".rw-messages-container .rw-message")).to_have_count(0)

"""Grounded chat against a real `rasa run`: the Open-chat follow-up and replies to typed messages.

One server talks to the loopback fake model; the suite's shared server has no model at all.
"""

import asyncio
import time
from typing import Iterator, Optional, Tuple

import httpx
import pytest

from addons.config import load_config
from addons.answers.guard import render_how_to
from clients import ChatClient, ToastStream, funnel_counts, inject, three_saves
from fake_llm import FakeLLM, Reply, fake_llm_settings
from posthog_events import posthog_event
from rasa_server import BOT, RasaServer, start_rasa

OFFER = "Updating projects one by one? There's a multi-select bulk edit you might not have seen — want me to show you?"
HOW_TO = load_config(BOT / "proactive.yml").trigger("bulk_edit_opportunity").how_to
LLM_FOLLOW_UP = (
    "Grace, you just saved three projects one by one. Here's the quicker way:\n"
    '1. Click the ⋯ kebab menu icon at the top right of the table.\n2. Pick "Bulk edit".\n'
    '3. Tick the projects.\n4. Pick the new priority in the toolbar.\n5. Click "Apply to 3".'
)


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory, fake_llm_server: FakeLLM) -> Iterator[RasaServer]:
    server = start_rasa(
        tmp_path_factory.mktemp("rasa-llm"),
        proactive_overrides={"driver": {"tick_seconds": 60}, "llm": fake_llm_settings(fake_llm_server, timeout_s=1.5)},
    )
    yield server
    server.stop()


async def seed_activity(server: RasaServer, user_id: str, session_id: str) -> str:
    """Grace identifies herself and saves three projects one by one; her open tab gets the
    toast, whose offer id is returned."""
    identify = posthog_event("$identify", ts=time.time() - 30, user=user_id, session=session_id, **{"$set": {"first_name": "Grace"}})
    async with ToastStream(server.proactive, user_id) as toast:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{server.proactive}/events", json=[identify, *three_saves(user_id, session_id)])
        assert response.status_code == 200 and response.json()["accepted"] == 4, response.text
        frame = await toast.next_event(timeout=10)
    assert frame is not None
    offer_id: str = frame["data"]["offer_id"]
    return offer_id


async def open_chat(server: RasaServer, chat: ChatClient, user_id: str, offer_id: Optional[str] = None) -> list:
    """Click "Open chat": inject the offer, return both bubbles as the widget received them."""
    response = await inject(server.proactive, chat.session_id, OFFER, user_id, trigger_id="bulk_edit_opportunity",
                            offer_id=offer_id)
    assert response.status_code == 200, response.text
    assert response.json()["follow_up"] is True
    bubbles = [await chat.next_bot_message(timeout=10), await chat.next_bot_message(timeout=10)]
    assert None not in bubbles, bubbles
    return bubbles


async def open_chat_after_three_saves(server: RasaServer, user_id: str, session_id: str) -> Tuple[str, dict, dict]:
    """The whole Open-chat story for one user: its chat session id, the question, the follow-up."""
    offer_id = await seed_activity(server, user_id, session_id)
    chat = await ChatClient(server.url, user_id).connect()
    try:
        question, follow_up = await open_chat(server, chat, user_id, offer_id)
    finally:
        await chat.close()
    assert question["text"] == OFFER
    return chat.session_id, question, follow_up


async def ask_after_three_saves(server: RasaServer, user_id: str, session_id: str, text: str) -> Tuple[str, dict]:
    """The user types a question after the three saves: their chat session id and the bot's reply."""
    await seed_activity(server, user_id, session_id)
    chat = await ChatClient(server.url, user_id).connect()
    try:
        await chat.say(text)
        reply = await chat.next_bot_message(timeout=10)
    finally:
        await chat.close()
    assert reply is not None
    return chat.session_id, reply


def assert_spaced(question: dict, follow_up: dict, what: str) -> None:
    gap = follow_up["received_at"] - question["received_at"]
    print(f"\n{what} landed {gap:.3f} s after the question")
    assert gap >= 0.55, f"bubble 2 came {gap:.3f} s after bubble 1"


async def test_open_chat_sends_the_question_then_the_llm_follow_up(llm_server, fake_llm, user_id, session_id):
    fake_llm.script(Reply(LLM_FOLLOW_UP))
    written_before = funnel_counts(llm_server.proactive)["follow_up"]
    sender_id, question, follow_up = await open_chat_after_three_saves(llm_server, user_id, session_id)
    assert follow_up["text"] == LLM_FOLLOW_UP
    written = funnel_counts(llm_server.proactive)["follow_up"]
    assert (written["model"] - written_before["model"], written["fallback"] - written_before["fallback"]) == (1, 0)
    assert_spaced(question, follow_up, "follow-up")
    prompt = fake_llm.prompt()
    assert "clicked 'Save changes' on /projects (3 times)" in prompt
    assert "The user's first name: Grace" in prompt
    assert all(step in prompt for step in HOW_TO)
    log = llm_server.log()
    question_line = log.index(f"proactive injected question: sender={sender_id} user={user_id} trigger=bulk_edit_opportunity")
    written = log.index(f"proactive follow-up written by the LLM: trigger=bulk_edit_opportunity sender={sender_id}")
    follow_up_line = log.index(f"proactive injected follow-up: sender={sender_id} trigger=bulk_edit_opportunity")
    assert question_line < written < follow_up_line


async def test_an_invented_button_never_reaches_the_widget(llm_server, fake_llm, user_id, session_id):
    fake_llm.script(Reply('Select your projects and click **Edit Selected**, then "Apply to 3".'))
    sender_id, _, follow_up = await open_chat_after_three_saves(llm_server, user_id, session_id)
    assert follow_up["text"] == render_how_to(HOW_TO, first_name="Grace")
    assert "Edit Selected" not in follow_up["text"]
    assert (f'proactive follow-up uses the deterministic answer: reason=guard violation: unknown UI "Edit Selected"; '
            f"trigger=bulk_edit_opportunity sender={sender_id}") in llm_server.log()


async def test_a_slow_model_costs_the_follow_up_not_the_question(llm_server, fake_llm, user_id, session_id):
    fake_llm.script(Reply(LLM_FOLLOW_UP, delay_s=4))
    await seed_activity(llm_server, user_id, session_id)
    chat = await ChatClient(llm_server.url, user_id).connect()
    other = await ChatClient(llm_server.url, "someone-else").connect()
    try:
        opening = asyncio.create_task(open_chat(llm_server, chat, user_id))
        assert await fake_llm.wait_for_requests(1, timeout=5)  # the follow-up is waiting on the model
        said_at = time.monotonic()
        await other.say("hello")
        greeting = await other.next_bot_message(timeout=5)
        question, follow_up = await opening
    finally:
        await chat.close()
        await other.close()
    assert greeting is not None and greeting["received_at"] - said_at < 1.0  # nobody else waits
    assert question["text"] == OFFER
    assert follow_up["text"] == render_how_to(HOW_TO, first_name="Grace")
    assert 1.3 < follow_up["received_at"] - question["received_at"] < 3.5  # the 1.5 s timeout, not the 4 s reply
    assert f"reason=timeout: no answer from fake-model within 1.5 s; trigger=bulk_edit_opportunity sender={chat.session_id}" in llm_server.log()


async def test_a_typed_question_is_answered_from_the_users_activity(llm_server, fake_llm, user_id, session_id):
    answer = 'You\'ve saved three projects one at a time; "Bulk edit" in the ⋯ menu does them all at once.'
    fake_llm.script(Reply(answer))
    sender_id, reply = await ask_after_three_saves(llm_server, user_id, session_id, "how do I edit several projects at once")
    assert reply["text"] == answer
    prompt = fake_llm.prompt()
    assert "clicked 'Save changes' on /projects (3 times)" in prompt
    assert 'The user\'s message: "how do I edit several projects at once"' in prompt
    assert f"proactive reply written by the LLM: user={user_id} sender={sender_id}" in llm_server.log()


async def test_without_an_llm_the_follow_up_is_the_how_to_and_the_log_says_so(rasa_server, user_id, session_id):
    assert "proactive LLM: none (no OPENAI_API_KEY, OPENAI_BASE_URL, llm.api_key or llm.base_url)" in rasa_server.log()
    sender_id, question, follow_up = await open_chat_after_three_saves(rasa_server, user_id, session_id)
    assert follow_up["text"] == render_how_to(HOW_TO, first_name="Grace")
    assert_spaced(question, follow_up, "how-to follow-up")
    lines = rasa_server.log().splitlines()

    def line_with(*parts: str) -> int:  # the server is shared: only this chat's lines are ours
        [n] = [n for n, line in enumerate(lines) if all(part in line for part in parts)]
        return n

    ours = f"sender={sender_id}"
    assert (line_with("proactive injected question:", ours)
            < line_with("proactive follow-up uses the deterministic answer: reason=no LLM configured (no OPENAI_API_KEY", ours)
            < line_with("proactive injected follow-up:", ours))


async def test_without_an_llm_a_typed_question_gets_the_honest_activity_answer(rasa_server, user_id, session_id):
    _, reply = await ask_after_three_saves(rasa_server, user_id, session_id, "how do I edit several projects at once")
    assert reply["text"].startswith("Here's what I can see you did most recently: clicked 'Save changes' on /projects (3 times)")
    assert HOW_TO[1] in reply["text"]  # the offer made to this session, as written


async def test_a_follow_up_is_dropped_when_the_user_wrote_while_it_was_being_written(llm_server, fake_llm, user_id, session_id):
    fake_llm.script(Reply(LLM_FOLLOW_UP, delay_s=1.2), Reply("The ⋯ menu has it."))
    await seed_activity(llm_server, user_id, session_id)
    chat = await ChatClient(llm_server.url, user_id).connect()
    try:
        injecting = asyncio.create_task(
            inject(llm_server.proactive, chat.session_id, OFFER, user_id, trigger_id="bulk_edit_opportunity")
        )
        question = await chat.next_bot_message(timeout=10)
        assert await fake_llm.wait_for_requests(1, timeout=5)  # the follow-up is being written
        await chat.say("where is it?")
        reply = await chat.next_bot_message(timeout=10)
        response = await injecting
        after = await chat.next_bot_message(timeout=2)
    finally:
        await chat.close()
    assert question is not None and question["text"] == OFFER
    assert reply is not None and reply["text"] == "The ⋯ menu has it."
    assert after is None  # the walkthrough written for before the question was answered never comes
    assert response.status_code == 200 and response.json()["follow_up"] is False
    assert f"proactive follow-up dropped: sender={chat.session_id} wrote since the question" in llm_server.log()

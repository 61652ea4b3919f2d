"""Grounded answers through the real ``openai`` client against a scripted loopback server."""

import logging
import time

import pytest

from addons.rasa.chat import FollowUpRequest
from addons.config import LLMConfig
from addons.answers.grounded import FollowUp, GroundedAssistant
from addons.answers.guard import render_how_to
from addons.answers.llm import LLMError, LLMTimeout, OpenAIChatModel, resolve_llm
from addons.answers.prompts import activity_lines
from fake_llm import Reply

OFFER = "Updating projects one by one? There's a multi-select bulk edit you might not have seen — want me to show you?"
GOOD_ANSWER = (
    'Ada, you just saved three projects one at a time — here is the quicker way:\n'
    '1. Click the kebab menu icon (⋯) at the top right of the table.\n'
    '2. Pick "Bulk edit".\n3. Tick the projects.\n4. Pick the new priority in the toolbar.\n5. Click "Apply to 3".'
)


def settings(fake=None, *, timeout_s=2.0):
    config = LLMConfig(model="fake-model", base_url=fake.base_url if fake else None, timeout_s=timeout_s)
    return resolve_llm(config, {})


@pytest.fixture
def story(engine, ph):
    """Ada identified herself, opened /projects and saved three projects one by one."""
    events = [
        ph.event("$identify", ts=ph.T0 - 40, **{"$set": {"first_name": "Ada", "email": "ada@example.com"}}),
        ph.pageview("/projects", ph.T0 - 30),
        *[ph.save(ph.T0 - 10 + i) for i in range(3)],
    ]
    engine.subscribe("user-1", now=ph.T0)  # her tab is open: the offer is delivered
    offers = engine.ingest(ph.batch(events, received_at=ph.T0), now=ph.T0)
    assert [o.trigger_id for o in offers] == ["bulk_edit_opportunity"]
    return engine


@pytest.fixture
async def assistant(story, fake_llm):
    assistant = GroundedAssistant(story, settings(fake_llm))
    yield assistant
    await assistant.aclose()


def follow_up_request():
    return FollowUpRequest("chat-1", "user-1", "bulk_edit_opportunity", OFFER)


def how_to(engine):
    return engine.config.trigger("bulk_edit_opportunity").how_to


async def test_a_grounded_answer_is_delivered_as_written(assistant, fake_llm, caplog):
    fake_llm.script(Reply(GOOD_ANSWER))
    caplog.set_level(logging.INFO, logger="addons")
    assert await assistant.follow_up.write(follow_up_request()) == FollowUp(GOOD_ANSWER, "model")
    assert "proactive follow-up written by the LLM: trigger=bulk_edit_opportunity sender=chat-1" in caplog.text


async def test_the_prompt_holds_the_activity_the_how_to_and_the_first_name(assistant, fake_llm, story):
    fake_llm.script(Reply(GOOD_ANSWER))
    await assistant.follow_up.write(follow_up_request())
    request = fake_llm.requests[-1]
    assert request["path"] == "/v1/chat/completions" and request["model"] == "fake-model"
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    prompt = fake_llm.prompt()
    assert "- 8 s ago: clicked 'Save changes' on /projects (3 times)" in prompt
    assert "landed on /projects on /projects" not in prompt
    assert "The user's first name: Ada" in prompt
    assert OFFER in prompt and "Yes, walk me through it." in prompt
    for i, step in enumerate(how_to(story), 1):
        assert f"{i}. {step}" in prompt


async def test_an_invented_button_is_replaced_by_the_how_to(assistant, fake_llm, story, caplog):
    fake_llm.script(Reply('Tick the rows, then click **Edit Selected** and "Apply to 3".'))
    written = await assistant.follow_up.write(follow_up_request())
    assert written == FollowUp(render_how_to(how_to(story), first_name="Ada"), "fallback")
    assert 'reason=guard violation: unknown UI "Edit Selected"' in caplog.text


async def test_an_http_500_falls_back_to_the_how_to(assistant, fake_llm, story, caplog):
    fake_llm.script(Reply(status=500))
    assert await assistant.follow_up.write(follow_up_request()) == FollowUp(
        render_how_to(how_to(story), first_name="Ada"), "fallback"
    )
    assert "reason=error: fake-model answered HTTP 500" in caplog.text
    assert len(fake_llm.requests) == 1  # no retries: the timeout is the whole wait


async def test_a_slow_model_is_cut_at_the_timeout_and_falls_back(story, fake_llm, caplog):
    fake_llm.script(Reply(GOOD_ANSWER, delay_s=3))
    assistant = GroundedAssistant(story, settings(fake_llm, timeout_s=0.5))
    started = time.monotonic()
    written = await assistant.follow_up.write(follow_up_request())
    elapsed = time.monotonic() - started
    await assistant.aclose()
    assert written == FollowUp(render_how_to(how_to(story), first_name="Ada"), "fallback")
    assert elapsed < 1.5, f"the follow-up waited {elapsed:.2f} s for a 0.5 s timeout"
    assert "reason=timeout: no answer from fake-model within 0.5 s" in caplog.text


async def test_without_an_llm_the_how_to_goes_and_the_log_says_why(story, caplog):
    caplog.set_level(logging.INFO, logger="addons")
    assistant = GroundedAssistant(story, settings(None))
    assert assistant.model is None
    assert await assistant.follow_up.write(follow_up_request()) == FollowUp(
        render_how_to(how_to(story), first_name="Ada"), "fallback"
    )
    assert "proactive follow-up uses the deterministic answer: reason=no LLM configured (no OPENAI_API_KEY" in caplog.text


async def test_a_trigger_without_how_to_gets_no_follow_up(assistant, fake_llm):
    assert await assistant.follow_up.write(FollowUpRequest("chat-1", "user-1", "no_such_trigger", OFFER)) is None
    assert fake_llm.requests == []


async def test_a_reply_is_grounded_in_the_activity_and_the_message(assistant, fake_llm):
    fake_llm.script(Reply('You saved three projects one by one; pick "Bulk edit" from the ⋯ menu instead.'))
    text = await assistant.reply("chat-1", "how do I edit several projects at once", {"userId": "user-1"})
    assert text.startswith("You saved three projects")
    prompt = fake_llm.prompt()
    assert "clicked 'Save changes' on /projects (3 times)" in prompt
    assert 'The user\'s message: "how do I edit several projects at once"' in prompt
    assert "(the copilot offered this to them just now)" in prompt


async def test_a_reply_naming_unknown_ui_becomes_the_honest_activity_answer(assistant, fake_llm, caplog):
    fake_llm.script(Reply('Use the "Mass update" wizard under **Settings**.'))
    text = await assistant.reply("chat-1", "how do I edit several projects at once", {"userId": "user-1"})
    assert text.startswith("Here's what I can see you did most recently: clicked 'Save changes' on /projects (3 times)")
    assert '"Bulk edit"' in text  # the how-to of the offer made to this session
    assert 'reason=guard violation: unknown UI "Mass update", "Settings"' in caplog.text


async def test_without_an_llm_a_reply_says_only_what_the_activity_shows(story):
    assistant = GroundedAssistant(story, settings(None))
    text = await assistant.reply("chat-1", "what did I do?", {"userId": "user-1"})
    assert text.startswith("Here's what I can see you did most recently: clicked 'Save changes' on /projects (3 times); landed on")


async def test_a_stranger_gets_an_honest_no_activity_answer(story):
    assistant = GroundedAssistant(story, settings(None))
    text = await assistant.reply("chat-2", "help", None)
    assert "I don't see any activity from you yet" in text


async def test_the_user_comes_from_the_chat_session_when_metadata_lacks_it(story, fake_llm):
    async def users_of(sender_id: str):
        return {"chat-1": "user-1"}.get(sender_id)

    assistant = GroundedAssistant(story, settings(fake_llm), users_of=users_of)
    await assistant.reply("chat-1", "help", {})
    await assistant.aclose()
    assert "The user's first name: Ada" in fake_llm.prompt()


async def test_the_client_maps_failures_to_its_own_errors(fake_llm):
    model = OpenAIChatModel(settings(fake_llm, timeout_s=0.3))
    try:
        fake_llm.script(Reply(status=503))
        with pytest.raises(LLMError, match="HTTP 503"):
            await model.complete([{"role": "user", "content": "hi"}])
        fake_llm.script(Reply("late", delay_s=1))
        with pytest.raises(LLMTimeout):
            await model.complete([{"role": "user", "content": "hi"}])
        fake_llm.script(Reply("   "))
        with pytest.raises(LLMError, match="empty answer"):
            await model.complete([{"role": "user", "content": "hi"}])
    finally:
        await model.aclose()


def test_activity_lines_collapse_repeats_and_keep_the_newest(engine, ph, story):
    session = story.activity.latest_session("user-1")
    actions = story.activity.recent_actions(session)
    lines = activity_lines(actions, now=ph.T0, limit=1)
    assert [str(line) for line in lines] == ["8 s ago: clicked 'Save changes' on /projects (3 times)"]
    assert [line.label for line in activity_lines(actions, now=ph.T0, limit=5)] == ["Page Load: /projects", "Save changes"]


async def test_an_answer_with_paragraphs_stays_one_bubble(assistant, fake_llm):
    fake_llm.script(Reply('Here is how.\n\n1. Open the ⋯ menu.\n\n\n2. Pick "Bulk edit".\n'))
    written = await assistant.follow_up.write(follow_up_request())
    assert written == FollowUp('Here is how.\n1. Open the ⋯ menu.\n2. Pick "Bulk edit".', "model")


async def test_a_button_the_user_asks_about_is_not_confirmed(assistant, fake_llm, caplog):
    fake_llm.script(Reply('Yes: click "Export to Excel" at the top of the table.'))
    caplog.set_level(logging.INFO, logger="addons")
    answer = await assistant.reply("chat-1", 'Is there an "Export to Excel" button?', {"userId": "user-1"})
    assert "Export to Excel" not in answer
    assert 'reason=guard violation: unknown UI "Export to Excel"' in caplog.text


async def test_a_malformed_model_response_falls_back_to_the_how_to(assistant, fake_llm, story, caplog):
    fake_llm.script(Reply(raw=b'{"choices": "not a list"}'))
    caplog.set_level(logging.INFO, logger="addons")
    assert await assistant.follow_up.write(follow_up_request()) == FollowUp(
        render_how_to(how_to(story), first_name="Ada"), "fallback"
    )
    assert "proactive follow-up uses the deterministic answer: reason=error: unexpected" in caplog.text


async def test_without_an_llm_what_did_i_just_do_mentions_the_saves_done_the_app_s_way(engine, ph):
    """Edit → Priority → Save changes, three times, then Open chat: the saves are not among the
    last lines, yet they are what the user did; the answer says so, with where they happened."""
    dialog = 'form:nth-child="1";dialog.dialog:attr__aria-label="Edit P-{n}"'
    events = [ph.pageview("/projects", ph.T0 - 60)]
    for i, n in enumerate(("1042", "1043", "1044")):
        at = ph.T0 - 50 + 10 * i
        chain = 'button.btn.btn-primary:attr__id="edit-save"text="Save changes";' + dialog.format(n=n)
        events += [ph.event(ts=at, text="Edit"), ph.event(ts=at + 1, **{"$el_text": "Save changes", "$elements_chain": chain}),
                   ph.event(ts=at + 2, **{"$event_type": "submit", "$elements_chain": dialog.format(n=n)})]
    events.append(ph.event(ts=ph.T0 - 5, text="Open chat"))
    engine.ingest(ph.batch(events, received_at=ph.T0), now=ph.T0)
    assistant = GroundedAssistant(engine, settings(None))
    text = await assistant.reply("chat-1", "what did I just do?", {"userId": "user-1"})
    assert "clicked 'Open chat' on /projects; submitted 'Edit P-1044' on /projects; clicked 'Save changes' in 'Edit P-1044'" in text
    assert "Along the way you clicked 'Edit' 3 times and clicked 'Save changes' 3 times." in text

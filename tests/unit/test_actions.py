"""The rasa_sdk actions: thin, the work is in addons."""

import pytest
from rasa.shared.exceptions import RasaException
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from actions.grounded import ActionGroundedReply
from addons.answers import grounded
from addons.config import LLMConfig
from addons.answers.grounded import GroundedAssistant
from addons.rasa.inprocess_actions import InProcessActionEndpoint
from addons.answers.llm import resolve_llm


def tracker(text, metadata):
    latest = {"text": text, "intent": {"name": "ask_help", "confidence": 0.9}, "entities": [], "metadata": metadata}
    return Tracker("chat-1", {}, latest, [], False, None, {}, "action_listen")


@pytest.fixture
def no_assistant():
    previous = grounded.installed()
    grounded.install(None)
    yield
    grounded.install(previous)


async def test_served_without_the_engine_the_reply_says_it_cannot_see_activity(no_assistant):
    dispatcher = CollectingDispatcher()
    assert await ActionGroundedReply().run(dispatcher, tracker("help", {}), {}) == []
    assert [m["text"] for m in dispatcher.messages] == [grounded.NO_ENGINE_REPLY]


async def test_in_process_the_reply_comes_from_the_installed_assistant(no_assistant, engine, ph):
    engine.ingest(ph.batch([ph.save(ph.T0 - 5)], received_at=ph.T0), now=ph.T0)
    grounded.install(GroundedAssistant(engine, resolve_llm(LLMConfig(enabled=False), {})))
    dispatcher = CollectingDispatcher()
    await ActionGroundedReply().run(dispatcher, tracker("what did I do?", {"userId": "user-1"}), {})
    assert dispatcher.messages[0]["text"] == "Here's what I can see you did most recently: clicked 'Save changes' on /projects."


class _Broken(Action):
    def name(self) -> str:
        return "action_broken"

    async def run(self, dispatcher, tracker, domain):
        raise RuntimeError("the CRM is down")


async def test_a_failing_in_process_action_is_logged_and_reported_like_a_failing_action_server(caplog):
    executor = ActionExecutor()
    executor.register_action(_Broken())
    endpoint = InProcessActionEndpoint(executor)
    call = {"next_action": "action_broken", "sender_id": "chat-1", "tracker": {"sender_id": "chat-1", "slots": {},
            "latest_message": {}, "events": [], "paused": False, "followup_action": None, "active_loop": {},
            "latest_action_name": "action_listen"}, "domain": {}, "version": "3.6.2"}
    with pytest.raises(RasaException, match="Failed to execute custom action 'action_broken': RuntimeError: the CRM is down"):
        await endpoint.request(json=call)
    assert "in-process action action_broken failed" in caplog.text

"""The rasa_sdk actions: thin, the work is in addons."""

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.grounded import ActionGroundedReply
from addons import grounded
from addons.config import LLMConfig
from addons.grounded import GroundedAssistant
from addons.llm import resolve_llm


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

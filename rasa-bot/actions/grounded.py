"""The reactive reply: a chat message answered from the user's activity in the app."""

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from addons.answers import grounded
from addons.domain import GROUNDED_REPLY_ACTION


class ActionGroundedReply(Action):
    """Answers help questions and anything NLU is unsure about (see ``addons.answers.grounded``)."""

    def name(self) -> Text:
        return GROUNDED_REPLY_ACTION

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        assistant = grounded.installed()
        if assistant is None:  # served by `rasa run actions`, away from the proactive engine
            dispatcher.utter_message(text=grounded.NO_ENGINE_REPLY)
            return []
        message = tracker.latest_message or {}
        text = await assistant.reply(tracker.sender_id, message.get("text") or "", message.get("metadata"))
        dispatcher.utter_message(text=text)
        return []

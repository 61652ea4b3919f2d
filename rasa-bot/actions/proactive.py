"""Actions of the proactive path."""

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from addons.domain import PROACTIVE_ENTITY, SEND_PROACTIVE_ACTION


class ActionSendProactive(Action):
    """Utters the text injected with ``EXTERNAL_proactive`` (entity ``proactive_text``)."""

    def name(self) -> Text:
        return SEND_PROACTIVE_ACTION

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        # The entity of this very message wins over the slot, which may hold an earlier text.
        text = next(tracker.get_latest_entity_values(PROACTIVE_ENTITY), None) or tracker.get_slot(PROACTIVE_ENTITY)
        if text:
            dispatcher.utter_message(text=text)
        return []

"""The names the copilot adds to a bot's domain, shared by the injection, the actions and
the adoption into an existing bot (``make adopt``).

Rasa-free on purpose: the actions import it when a team serves them with ``rasa run actions``.
"""

PROACTIVE_INTENT = "EXTERNAL_proactive"  # injected with trigger_intent when the user opens the chat
PROACTIVE_ENTITY = "proactive_text"  # the text action_send_proactive utters
SEND_PROACTIVE_ACTION = "action_send_proactive"
GROUNDED_REPLY_ACTION = "action_grounded_reply"

# What the copilot's rules (data/copilot.yml) and actions need in a domain, by section. The
# definitions (the slot's mapping) are the demo bot's domain.yml, which adoption copies.
COPILOT_DOMAIN = {
    "intents": ("ask_help", "affirm", PROACTIVE_INTENT),
    "entities": (PROACTIVE_ENTITY,),
    "slots": (PROACTIVE_ENTITY,),
    "actions": (SEND_PROACTIVE_ACTION, GROUNDED_REPLY_ACTION),
}

"""The names the copilot adds to a bot's domain, shared by the injection and the actions.

Rasa-free on purpose: the actions import it when a team serves them with ``rasa run actions``.
"""

PROACTIVE_INTENT = "EXTERNAL_proactive"  # injected with trigger_intent when the user opens the chat
PROACTIVE_ENTITY = "proactive_text"  # the text action_send_proactive utters

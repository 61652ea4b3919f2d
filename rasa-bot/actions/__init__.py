"""rasa_sdk actions. Run in-process by the proactive channel, or with `rasa run actions`."""

"""``make adopt BOT=path/to/bot``: the proactive copilot added to an existing Rasa bot."""

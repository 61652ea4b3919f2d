"""Checks a Rasa team runs in CI over its proactive setup, without a server.

``python -m addons.checks stories`` (from ``rasa-bot/``) plays the proactive test stories of
``proactive_tests/`` against ``proactive.yml`` (see ``addons.checks.story_file`` for the format).
"""

"""The proactive engine: PostHog ingest, per-session activity, triggers, gate, delivery.

Nothing in here knows about Sanic; ``channels/`` is the HTTP surface over it.
"""

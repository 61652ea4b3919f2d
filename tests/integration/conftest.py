import uuid
from typing import Iterator

import pytest

from clients import SOURCE_SECRETS
from posthog_events import PROJECT_KEY
from rasa_server import RasaServer, start_rasa
from redis_server import RedisServer, start_redis


@pytest.fixture(scope="session")
def rasa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    """One real `rasa run` for the integration suite. The driver ticks once a minute, so an
    offer that arrives within seconds can only come from on-ingest evaluation."""
    server = start_rasa(
        tmp_path_factory.mktemp("rasa"),
        proactive_overrides={
            "driver": {"tick_seconds": 60},
            # Every test request comes from 127.0.0.1; the limits get their own server.
            "ingest": {"project_keys": [PROJECT_KEY], "events_per_minute_per_user": 1_000_000,
                       "requests_per_minute_per_ip": 1_000_000},
            # Every push source on, each with its own secret (tests/integration/test_event_sources.py).
            "sources": {name: {"secret": secret} for name, secret in SOURCE_SECRETS.items()},
        },
    )
    print(f"\nrasa run ready in {server.startup_s:.1f} s on port {server.port}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server (no persistence) for one test module, started and stopped by pid."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def user_id() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def session_id() -> str:
    return f"ph-session-{uuid.uuid4().hex[:8]}"

"""Several `rasa run` replicas sharing a real redis-server, as the cluster tests start them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from rasa_server import BOT, RasaServer, start_rasa
from redis_server import RedisServer


def cluster_endpoints(workdir: Path, redis_server: RedisServer) -> Path:
    """The bot's endpoints.yml, with Rasa's conversations and their locks in the shared Redis."""
    endpoints = yaml.safe_load((BOT / "endpoints.yml").read_text())
    shared = {"url": "127.0.0.1", "port": redis_server.port, "db": 1}
    endpoints["tracker_store"] = {"type": "redis", **shared}
    endpoints["lock_store"] = {"type": "redis", **shared}
    path = workdir / "endpoints.yml"
    path.write_text(yaml.safe_dump(endpoints))
    return path


def start_replicas(
    redis_server: RedisServer, workdir: Path, count: int, *, store: str = "redis",
    proactive_overrides: Optional[Dict[str, Any]] = None, env: Optional[Dict[str, str]] = None,
    heartbeat_seconds: float = 1.0,
) -> List[RasaServer]:
    """``count`` replicas on loopback ports, the offers in Redis (``store``) and the chat layer
    too. ``proactive_overrides``, ``env`` and ``heartbeat_seconds`` as for ``start_rasa``."""
    overrides = {"driver": {"tick_seconds": 60}, "redis": {"url": redis_server.url}, "store": store,
                 **(proactive_overrides or {})}
    started: List[RasaServer] = []
    try:
        for n in range(count):
            replica_dir = workdir / f"replica-{n}-{uuid.uuid4().hex[:6]}"
            replica_dir.mkdir()
            started.append(start_rasa(
                replica_dir, proactive_overrides=overrides, env=env, heartbeat_seconds=heartbeat_seconds,
                extra_args=["--endpoints", str(cluster_endpoints(replica_dir, redis_server))],
            ))
    except BaseException:
        for server in started:
            server.stop()
        raise
    return started

"""The servers the HTTP figures run against: a real `rasa run`, and a bare Sanic app."""

from __future__ import annotations

import logging
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import httpx

from bench.common import ROOT, raise_nofile
from cluster_servers import start_replicas
from posthog_events import PROJECT_KEY
from rasa_server import RasaServer, free_port, start_rasa, wait_until_ready
from redis_server import RedisServer, start_redis

logger = logging.getLogger("bench.servers")


def bench_overrides(proactive_overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The shipped proactive.yml with two limits lifted, because one loopback client stands for
    thousands of users: the per-IP and per-user ingest rate limits, and the offer caps (the
    load repeats the story several times per user). Both are checked on every request as
    usual; they just pass."""
    return {
        "ingest": {"project_keys": [PROJECT_KEY], "events_per_minute_per_user": 10**9, "requests_per_minute_per_ip": 10**9},
        "caps": {"per_user_per_day": 10**6, "per_session_per_hour": 10**6, "min_gap_s": 0},
        **(proactive_overrides or {}),
    }


def start_bench_rasa(
    workdir: Path, *, extra_args: Sequence[str] = (), proactive_overrides: Optional[Dict[str, Any]] = None
) -> RasaServer:
    """`rasa run` with the shipped settings (15 s heartbeats, ``bench_overrides``), able to hold 10k streams."""
    raise_nofile()  # the child inherits the lifted open-file limit
    server = start_rasa(workdir, extra_args=extra_args, proactive_overrides=bench_overrides(proactive_overrides),
                        heartbeat_seconds=15.0)
    logger.info("rasa run ready in %.1f s on port %d (pid %d)", server.startup_s, server.port, server.process.pid)
    return server


def start_bench_replicas(
    redis_server: RedisServer, workdir: Path, count: int, *, proactive_overrides: Optional[Dict[str, Any]] = None
) -> List[RasaServer]:
    """``count`` replicas as ``start_bench_rasa`` starts one, sharing ``redis_server``: the
    offers (``store: redis``), the chat layer, and Rasa's trackers and locks."""
    raise_nofile()
    replicas = start_replicas(redis_server, workdir, count, heartbeat_seconds=15.0,
                              proactive_overrides=bench_overrides({"driver": {"tick_seconds": 5}, **(proactive_overrides or {})}))
    for server in replicas:
        logger.info("replica ready in %.1f s on port %d (pid %d)", server.startup_s, server.port, server.process.pid)
    return replicas


@contextmanager
def redis_replicas(
    workdir: Path, count: int = 2, *, proactive_overrides: Optional[Dict[str, Any]] = None
) -> Iterator[Tuple[RedisServer, List[RasaServer]]]:
    """A redis-server (no persistence) and ``count`` bench replicas on it, all stopped on exit."""
    redis_dir = workdir / "redis"
    redis_dir.mkdir()
    redis_server = start_redis(redis_dir)
    try:
        replicas = start_bench_replicas(redis_server, workdir, count, proactive_overrides=proactive_overrides)
        try:
            yield redis_server, replicas
        finally:
            for replica in replicas:
                replica.stop()
    finally:
        redis_server.stop()


@dataclass
class BareSanic:
    process: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_bare_sanic(log_path: Path) -> BareSanic:
    """The throughput baseline (``bench/bare_sanic.py``) on a free loopback port."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "bench.bare_sanic", str(port)], cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT)
    server = BareSanic(process, port)
    wait_until_ready(
        process, lambda: httpx.get(f"{server.url}/health", timeout=1.0).status_code == 200,
        name="bare Sanic", timeout=60, log=lambda: log_path.read_text(errors="replace"), stop=server.stop,
    )
    return server

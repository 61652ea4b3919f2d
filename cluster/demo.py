"""`make demo-cluster`: the demo as a production cluster, on loopback.

A redis-server (persistence on), N `rasa run` replicas sharing the copilot's state through it
(``store: redis``) and Rasa's trackers and locks, nginx in front of them
(``cluster/nginx.conf.template``: round-robin, sticky for socket.io), and the app pointed at
nginx. The replicas run with ``PROACTIVE_PRODUCTION=1``: they refuse to start with the demo's
secret, debug route or project key, so the cluster has its own, generated on the first start
and kept in ``.cluster/secrets.env`` (with Redis's data, which they go with).

Run: ``python -m cluster.demo [--replicas N] [--port 5005] [--app-port 3000]`` (PYTHONPATH as
the Makefile sets it).
"""

from __future__ import annotations

import argparse
import copy
import os
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Dict, List, Optional

import yaml

from app_server import AppServer, start_app
from cluster_servers import start_replicas
from nginx_server import NginxServer, start_nginx
from rasa_server import BOT, ROOT, RasaServer
from redis_server import RedisServer, start_redis

STATE = ROOT / ".cluster"
# Rasa passes it to Sanic as the listening socket's accept backlog (100 unless set; Linux caps it
# at net.core.somaxconn). When a replica dies, its tabs reconnect through nginx all at once, and
# past the backlog their connects wait for SYN retries (1 s, 3 s, 7 s …).
ACCEPT_BACKLOG = "SANIC_BACKLOG"


@dataclass
class ClusterSecrets:
    """What a production deployment sets itself: the identity secret shared by the app and the
    replicas, the PostHog project key the app sends, the insights route's token."""

    identity_secret: str
    project_key: str
    insights_token: str

    @classmethod
    def kept_in(cls, path: Path) -> "ClusterSecrets":
        """The cluster's secrets, generated the first time and then read back from ``path``."""
        if path.exists():
            values = dict(line.split("=", 1) for line in path.read_text().split() if "=" in line)
            return cls(values["PROACTIVE_IDENTITY_SECRET"], values["POSTHOG_PROJECT_KEY"],
                       values["PROACTIVE_INSIGHTS_TOKEN"])
        made = cls(secrets.token_hex(32), f"phc_{secrets.token_hex(12)}", secrets.token_urlsafe(24))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text("".join(f"{k}={v}\n" for k, v in made.environment().items()))
        return made

    def environment(self) -> Dict[str, str]:
        return {"PROACTIVE_IDENTITY_SECRET": self.identity_secret, "POSTHOG_PROJECT_KEY": self.project_key,
                "PROACTIVE_INSIGHTS_TOKEN": self.insights_token}


def production_overrides(keys: ClusterSecrets) -> Dict[str, Any]:
    """proactive.yml's sections as the cluster changes them: its own project key, and no debug
    route (the identity secret comes from the environment)."""
    shipped = yaml.safe_load((BOT / "proactive.yml").read_text())
    identity = {**copy.deepcopy(shipped["identity"]), "debug_route": False}
    identity.pop("secret", None)
    ingest = {**copy.deepcopy(shipped["ingest"]), "project_keys": [keys.project_key]}
    return {"identity": identity, "ingest": ingest, "driver": shipped["driver"]}


@dataclass
class Cluster:
    redis: RedisServer
    replicas: List[RasaServer]
    balancer: NginxServer
    app: Optional[AppServer] = None
    stopped: bool = field(default=False)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        for server in [self.app, self.balancer, *self.replicas, self.redis]:
            if server is not None:
                server.stop()


def start_cluster(state: Path, replicas: int, *, port: Optional[int] = None, app_port: Optional[int] = None,
                  with_app: bool = True, heartbeat_seconds: float = 15.0, env: Optional[Dict[str, str]] = None) -> Cluster:
    """Redis, ``replicas`` replicas, nginx on ``port`` and the app on ``app_port`` (free
    ports by default), with their files under ``state``. ``env``: more for the replicas."""
    keys = ClusterSecrets.kept_in(state / "secrets.env")
    shutil.rmtree(state / "replicas", ignore_errors=True)  # the previous run's logs and config copies
    for folder in ("redis", "nginx", "replicas", "app"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    redis_server = start_redis(state / "redis", appendonly=True)
    started: List[Any] = [redis_server]
    try:
        replica_env = {ACCEPT_BACKLOG: "4096", **(env or {}), **keys.environment(), "PROACTIVE_PRODUCTION": "1",
                       "SANIC_PROXIES_COUNT": "1"}
        servers = start_replicas(redis_server, state / "replicas", replicas, env=replica_env,
                                 proactive_overrides=production_overrides(keys), heartbeat_seconds=heartbeat_seconds)
        started += servers
        balancer = start_nginx(state / "nginx", [f"127.0.0.1:{s.port}" for s in servers], port=port)
        started.append(balancer)
        cluster = Cluster(redis_server, servers, balancer)
        if with_app:
            cluster.app = start_app(state / "app", rasa_url=balancer.url, env=keys.environment(), port=app_port)
        return cluster
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="make demo-cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=5005, help="nginx, in front of the replicas")
    parser.add_argument("--app-port", type=int, default=3000)
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    print(f"== starting redis-server, {args.replicas} replicas of rasa run, nginx on :{args.port} and the app on "
          f":{args.app_port} (files in {STATE.relative_to(ROOT)}/)", flush=True)
    model = {k: v for k, v in os.environ.items() if k.startswith("OPENAI_")}  # as `make demo`: a model if one is set
    cluster = start_cluster(STATE, args.replicas, port=args.port, app_port=args.app_port, env=model)

    def stop(signum: int, frame: Optional[FrameType]) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started in the background, where SIGINT comes ignored
    try:
        assert cluster.app is not None
        logs = "\n".join(f"  replica {n + 1}: rasa run on :{s.port}, log {s.log_path}" for n, s in enumerate(cluster.replicas))
        print(f"""
== Ready. Open {cluster.app.url}/projects   (Ctrl-C stops everything)

The reference story works as in `make demo` (README), now through nginx on :{cluster.balancer.port}:
change the priority of three projects one by one, and a toast offers Show me / Open chat.
Whichever replica takes an event, holds the toast stream or the chat socket, the offer is
made once and reaches the tab.

{logs}
  redis-server on :{cluster.redis.port} (append-only file in {STATE.relative_to(ROOT)}/redis), log {cluster.redis.log_path}
  nginx: {cluster.balancer.prefix}/access.log

The replicas run with PROACTIVE_PRODUCTION=1 and the cluster's own secrets
({STATE.relative_to(ROOT)}/secrets.env, made on the first start): no debug route, the demo's
secret and project key refused. Insights: {cluster.app.url}/insights (the app holds the token).
Try killing a replica (kill -9 <pid>): the next events go to the others, the tab's toast stream
reconnects through nginx, and nothing is offered twice.
""", flush=True)
        # A replica may die (try it); Redis, nginx and the app are the cluster's single points.
        while all(server.process.poll() is None for server in (cluster.redis, cluster.balancer, cluster.app)):
            time.sleep(1.0)
        print("redis-server, nginx or the app exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    sys.exit(main(sys.argv[1:]))

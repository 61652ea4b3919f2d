"""Start a real ``rasa run`` of the bot on a free loopback port, and stop it by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "rasa-bot"
MODEL = BOT / "models" / "proactive.tar.gz"
RASA = Path(sys.executable).with_name("rasa")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(
    process: subprocess.Popen, ready: Callable[[], bool], *, name: str, timeout: float,
    log: Callable[[], str], stop: Callable[[], None],
) -> None:
    """Poll ``ready`` until it answers True; raise with the log's tail if the process exits
    first or ``timeout`` passes (then ``stop`` it). HTTP errors and bad JSON mean "not yet"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log()[-4000:]}")
        try:
            if ready():
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    stop()
    raise RuntimeError(f"{name} not ready after {timeout:g} s:\n{log()[-4000:]}")


@dataclass
class RasaServer:
    process: subprocess.Popen
    port: int
    log_path: Path
    startup_s: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proactive(self) -> str:
        return f"{self.url}/webhooks/proactive"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> float:
        """SIGINT (Sanic's graceful stop), SIGKILL if it hangs; returns seconds taken."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return time.monotonic() - started


def start_rasa(
    workdir: Path,
    *,
    bot: Path = BOT,
    model: Path = MODEL,
    proactive_overrides: Optional[Dict[str, Any]] = None,
    extra_args: Sequence[str] = (),
    env: Optional[Dict[str, str]] = None,
    ready_timeout: float = 120.0,
    heartbeat_seconds: float = 1.0,
) -> RasaServer:
    """Run the bot (the demo's, or ``bot`` with its ``model``) with its own credentials and
    proactive config copies in ``workdir``.

    ``proactive_overrides`` replaces top-level sections of proactive.yml (e.g. the driver tick,
    or ``llm`` to point at a fake model). Streams send a heartbeat every ``heartbeat_seconds``
    (1 s for tests; benchmarks keep the shipped 15 s). The developer's ``OPENAI_*`` variables are not passed
    on, so no test ever reaches a real model; ``env`` adds variables on purpose.
    """
    if not model.exists():
        raise RuntimeError(f"{model} is missing: run `make model` (make test does it)")
    config = yaml.safe_load((bot / "proactive.yml").read_text())
    config.update(proactive_overrides or {})
    proactive_path = workdir / "proactive.yml"
    proactive_path.write_text(yaml.safe_dump(config, allow_unicode=True))
    credentials = yaml.safe_load((bot / "credentials.yml").read_text())
    credentials["channels.proactive.ProactiveInput"]["config"] = str(proactive_path)
    credentials["channels.proactive.ProactiveInput"]["heartbeat_seconds"] = heartbeat_seconds
    credentials_path = workdir / "credentials.yml"
    credentials_path.write_text(yaml.safe_dump(credentials))

    port = free_port()
    log_path = workdir / "rasa.log"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env = {**inherited, "RASA_TELEMETRY_ENABLED": "false", "PYTHONWARNINGS": "ignore", "LOG_LEVEL": "INFO", **(env or {})}
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(RASA), "run", "-m", str(model), "-i", "127.0.0.1", "-p", str(port),
             "--credentials", str(credentials_path), "--endpoints", "endpoints.yml", "--cors", "*", *extra_args],
            cwd=bot, stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    server = RasaServer(process, port, log_path, startup_s=0.0)

    def ready() -> bool:
        health = httpx.get(f"{server.proactive}/health", timeout=1.0).json()
        return bool(health.get("agent_ready") and health["driver"]["running"])

    wait_until_ready(process, ready, name="rasa run", timeout=ready_timeout, log=server.log, stop=server.stop)
    server.startup_s = time.monotonic() - started
    return server

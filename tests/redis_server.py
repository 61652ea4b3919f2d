"""A real `redis-server` on a loopback port, started by the tests and stopped by pid."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import redis

from rasa_server import free_port, wait_until_ready


@dataclass
class RedisServer:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_redis(workdir: Path, *, appendonly: bool = False, port: Optional[int] = None) -> RedisServer:
    """redis-server in ``workdir`` (its AOF there with ``appendonly``), on a free loopback port
    (or ``port``: a restart where clients expect it)."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is missing: run scripts/install-redis.sh (make test does it)")
    port = port or free_port()
    log_path = workdir / "redis.log"
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
         "--appendonly", "yes" if appendonly else "no", "--logfile", str(log_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    server = RedisServer(process, port, log_path)
    client = redis.Redis(port=port, socket_connect_timeout=0.5)

    def ready() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    started = time.monotonic()
    wait_until_ready(process, ready, name="redis-server", timeout=20, log=server.log, stop=server.stop)
    client.close()
    print(f"redis-server ready in {time.monotonic() - started:.2f} s on port {port}")
    return server

"""Start the built host app (`next start`) on a free loopback port, and stop it by pid."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import httpx

from rasa_server import ROOT, free_port, wait_until_ready

APP = ROOT / "app"
NEXT = APP / "node_modules" / ".bin" / "next"


@dataclass
class AppServer:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # next start forks workers: stop the group
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def start_app(workdir: Path, *, rasa_url: str, env: Optional[Dict[str, str]] = None, ready_timeout: float = 60.0,
              port: Optional[int] = None) -> AppServer:
    """Serve the production build of app/ against the `rasa run` at ``rasa_url``, on ``port``
    (by default a free one)."""
    if not (APP / ".next" / "BUILD_ID").exists():
        raise RuntimeError("app/.next is missing: run `make app` (make test does it)")
    port = port or free_port()
    log_path = workdir / "app.log"
    process_env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1", "RASA_URL": rasa_url, **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(NEXT), "start", "-p", str(port), "-H", "127.0.0.1"],
            cwd=APP, stdout=log, stderr=subprocess.STDOUT, env=process_env, start_new_session=True,
        )
    server = AppServer(process, port, log_path)
    wait_until_ready(
        process, lambda: httpx.get(f"{server.url}/projects", timeout=2.0).status_code == 200,
        name="next start", timeout=ready_timeout, log=server.log, stop=server.stop,
    )
    return server

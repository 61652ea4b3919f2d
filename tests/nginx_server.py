"""A real nginx in front of replicas, from the project's cluster/nginx.conf.template, run as
the current user on a loopback port and stopped by pid."""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Optional, Sequence

import httpx

from rasa_server import ROOT, free_port, wait_until_ready

TEMPLATE = ROOT / "cluster" / "nginx.conf.template"


@dataclass
class NginxServer:
    process: subprocess.Popen
    port: int
    prefix: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proactive(self) -> str:
        return f"{self.url}/webhooks/proactive"

    def log(self) -> str:
        error_log = self.prefix / "error.log"
        return error_log.read_text(errors="replace") if error_log.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: lets open streams close
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def render_config(prefix: Path, port: int, upstreams: Sequence[str]) -> str:
    servers = "\n        ".join(f"server {address};" for address in upstreams)
    return Template(TEMPLATE.read_text()).safe_substitute(
        listen=f"127.0.0.1:{port}", upstreams=servers, prefix=str(prefix)
    )


def start_nginx(prefix: Path, upstreams: Sequence[str], *, port: Optional[int] = None) -> NginxServer:
    """nginx balancing over ``upstreams`` ("127.0.0.1:5005", …), its files under ``prefix``, on
    ``port`` (by default a free one)."""
    executable = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(executable).exists():
        raise RuntimeError("nginx is missing: run scripts/install-nginx.sh (make test does it)")
    port = port or free_port()
    config = prefix / "nginx.conf"
    config.write_text(render_config(prefix, port, upstreams))
    process = subprocess.Popen(
        [executable, "-p", str(prefix), "-c", str(config)],
        stdout=subprocess.DEVNULL, stderr=open(prefix / "stderr.log", "wb"),
    )
    server = NginxServer(process, port, prefix)
    wait_until_ready(
        process, lambda: httpx.get(f"{server.proactive}/health", timeout=2).status_code == 200,
        name="nginx", timeout=20, log=lambda: server.log() + (prefix / "stderr.log").read_text(), stop=server.stop,
    )
    return server

"""Start-up and shutdown of the one `rasa run` process that hosts everything."""

import asyncio
import re

import httpx
import pytest

from clients import ToastStream
from rasa_server import start_rasa


async def test_sigint_closes_open_streams_and_stops_the_driver_promptly(tmp_path):
    server = start_rasa(tmp_path, proactive_overrides={"driver": {"tick_seconds": 0.2}})
    try:
        async with ToastStream(server.proactive, "lifecycle-user") as toast:
            await asyncio.sleep(0.5)  # a few driver ticks
            seconds = await asyncio.get_running_loop().run_in_executor(None, server.stop)
            assert await toast.next_event(timeout=5) is None  # the stream ended, no hang
    finally:
        server.stop()
    assert server.process.returncode is not None
    # Without closing streams in before_server_stop, Sanic waits its 15 s grace period.
    assert seconds < 12, f"shutdown took {seconds:.1f} s"
    log = server.log()
    assert "proactive setting unsafe for production: the identity secret is the demo's" in log  # the demo's config
    assert "proactive driver started: tick every 0.2 s" in log
    assert "proactive driver stopped after" in log


def test_rasa_run_refuses_a_proactive_yml_with_problems_and_says_where(tmp_path):
    """Every problem at file:line, before anything starts (the validator runs at start-up)."""
    with pytest.raises(RuntimeError) as refused:
        start_rasa(tmp_path, proactive_overrides={"sesion": {"interaction_timeout_s": 10}}, ready_timeout=60)
    log = str(refused.value)
    assert "rasa run exited" in log
    assert re.search(r"proactive\.yml:\d+: sesion: unknown key 'sesion'; did you mean 'session'\?", log), log[-2000:]


def test_in_production_mode_rasa_run_refuses_the_demo_s_settings(tmp_path):
    with pytest.raises(RuntimeError) as refused:
        start_rasa(tmp_path, env={"PROACTIVE_PRODUCTION": "1"}, extra_args=["--enable-api"], ready_timeout=60)
    log = str(refused.value)
    assert "PROACTIVE_PRODUCTION is on, and these settings are not safe for production" in log, log[-2000:]
    assert "identity.debug_route is on" in log
    assert "Rasa's HTTP API is on (--enable-api) without --auth-token or --jwt-secret" in log



def test_sanic_s_access_log_is_written_when_its_level_lets_it_through(tmp_path):
    """The channel turns Sanic's access log off only when Rasa's level for it drops every record
    (``LOG_LEVEL_LIBRARIES``, ERROR by default): a team that raises it still gets its lines."""
    log = tmp_path / "rasa-file.log"
    server = start_rasa(tmp_path, extra_args=["--log-file", str(log)], env={"LOG_LEVEL_LIBRARIES": "INFO"})

    def access_lines() -> int:  # Rasa formats them with their message only, which Sanic leaves empty
        return len(re.findall(r"\[INFO \]  \n", log.read_text()))

    try:
        before = access_lines()  # the readiness checks'
        for _ in range(3):
            assert httpx.get(f"{server.proactive}/health").status_code == 200
        assert access_lines() == before + 3
    finally:
        server.stop()

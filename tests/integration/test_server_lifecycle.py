"""Start-up and shutdown of the one `rasa run` process that hosts everything."""

import asyncio

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
    assert "proactive driver started: tick every 0.2 s" in log
    assert "proactive driver stopped after" in log

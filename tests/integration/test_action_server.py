"""The actions stay ordinary rasa_sdk actions: served by a separate action server, away from the engine."""

import subprocess
import sys
import time

import httpx

from addons.answers.grounded import NO_ENGINE_REPLY
from rasa_server import BOT, free_port


def test_the_reply_action_on_a_plain_action_server_says_it_cannot_see_activity():
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "rasa_sdk", "--actions", "actions", "-p", str(port)], cwd=BOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the action server did not start"
            time.sleep(0.2)
        tracker = {"sender_id": "chat-1", "slots": {}, "events": [], "paused": False, "followup_action": None,
                   "active_loop": {}, "latest_action_name": "action_listen",
                   "latest_message": {"text": "how do I edit several projects at once", "metadata": {"userId": "u-1"}}}
        call = {"next_action": "action_grounded_reply", "sender_id": "chat-1", "tracker": tracker, "domain": {}, "version": "3.6.2"}
        result = httpx.post(f"http://127.0.0.1:{port}/webhook", json=call, timeout=10).json()
    finally:
        server.terminate()
        server.wait(10)
    assert [r["text"] for r in result["responses"]] == [NO_ENGINE_REPLY]

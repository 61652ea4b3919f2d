"""A tiny OpenAI-compatible server on loopback: ``POST /v1/chat/completions``, scripted per test.

Threaded stdlib HTTP, so it answers the in-process ``openai`` client of a unit test and a
``rasa run`` subprocess alike. Each request takes the next scripted ``Reply`` (the last
one repeats); every request body is recorded for assertions on the prompt.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional


@dataclass(frozen=True)
class Reply:
    content: str = "Happy to help."
    status: int = 200
    delay_s: float = 0.0
    raw: Optional[bytes] = None  # sent as the 200 body instead of a chat completion


class FakeLLM:
    def __init__(self) -> None:
        self._script: List[Reply] = [Reply()]
        self.requests: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = fake._record(self.path, body)
                time.sleep(reply.delay_s)
                if reply.status == 200:
                    payload: Dict[str, Any] = {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": reply.content}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                else:
                    payload = {"error": {"message": f"scripted failure {reply.status}", "type": "server_error"}}
                data = reply.raw if reply.raw is not None else json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *replies: Reply) -> "FakeLLM":
        with self._lock:
            self._script = list(replies) or [Reply()]
            self.requests.clear()
        return self

    def prompt(self, index: int = -1) -> str:
        """All message contents of a recorded request, joined: what the model was shown."""
        return "\n".join(m["content"] for m in self.requests[index]["messages"])

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return True
            await asyncio.sleep(0.02)
        return False

    def start(self) -> "FakeLLM":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, path: str, body: Dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append({"path": path, **body})
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]


def fake_llm_settings(fake: Optional[FakeLLM], *, timeout_s: float = 2.0) -> Dict[str, Any]:
    """A proactive.yml ``llm`` section pointing at ``fake`` (or switched off when None)."""
    if fake is None:
        return {"enabled": False}
    return {"enabled": True, "model": "fake-model", "base_url": fake.base_url, "timeout_s": timeout_s}

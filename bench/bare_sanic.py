"""The ingest-throughput baseline: one Sanic route that JSON-parses the body and answers
(and a GET / like Rasa's own, to show what Rasa's app costs before the copilot runs).

Same Python, same Sanic (Rasa's pin), same ``app.run`` arguments and log levels as
``rasa run`` uses, so the ratio prices what the copilot's ingest adds on top of Sanic.
Run: ``python -m bench.bare_sanic PORT``.
"""

from __future__ import annotations

import json
import sys

from rasa.utils.common import update_sanic_log_level
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

app = Sanic("bare_ingest")


@app.post("/events")
async def events(request: Request) -> HTTPResponse:
    payload = json.loads(request.body)
    return response.json({"status": 1, "accepted": 1 if isinstance(payload, dict) else len(payload)})


@app.get("/")
async def hello(_request: Request) -> HTTPResponse:
    return response.text("Hello from a bare Sanic app")  # Rasa's GET / answers the same way


@app.get("/health")
async def health(_request: Request) -> HTTPResponse:
    return response.json({"status": "ok"})


if __name__ == "__main__":
    update_sanic_log_level()
    app.run(host="127.0.0.1", port=int(sys.argv[1]), backlog=100, workers=1)

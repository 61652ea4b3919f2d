"""The proactive copilot's HTTP surface inside ``rasa run``, under ``/webhooks/proactive``.

Registered in ``credentials.yml`` by module path; its block there holds the channel's
settings (see ``from_credentials``). Handlers parse, call one thing of the copilot's
``CopilotRuntime`` (``addons/runtime.py``), and answer JSON. Every refusal is a
``ProactiveError`` carrying its status: one handler turns any of them into a 4xx/503.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from typing import Any, Awaitable, Callable, Coroutine, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.log import access_logger
from sanic.request import Request
from sanic.response import HTTPResponse

from addons.checks.validate import raise_if_invalid
from addons.config import load_config
from addons.errors import ProactiveError
from addons.offers.delivery import CLOSED, Subscription
from addons.offers.offer import Offer, stream_cursor
from addons.offers.ingest import json_object, require_identifier, text_field
from addons.runtime import CopilotRuntime
from addons.security.identity import HEADER, QUERY

logger = logging.getLogger(__name__)

# posthog-js posts captures to <api_host>/e/; older clients and SDKs use the others.
CAPTURE_PATHS = ("/e/", "/i/v0/e/", "/batch/", "/capture/", "/track/")

Handler = Callable[..., Coroutine[Any, Any, Optional[HTTPResponse]]]


class ProactiveInput(InputChannel):
    """Event ingest, the toast stream, chat injection, tour lifecycle and diagnostics."""

    @classmethod
    def name(cls) -> Text:
        return "proactive"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "ProactiveInput":
        credentials = credentials or {}
        return cls(
            config_path=credentials.get("config", "proactive.yml"),
            heartbeat_seconds=float(credentials.get("heartbeat_seconds", 15)),
            max_body_bytes=int(credentials.get("max_body_bytes", 1_048_576)),
            actions_package=credentials.get("actions_package", "actions"),
        )

    def __init__(
        self,
        config_path: str = "proactive.yml",
        heartbeat_seconds: float = 15.0,
        max_body_bytes: int = 1_048_576,
        actions_package: Optional[str] = "actions",
    ) -> None:
        _configure_logging()
        self.heartbeat_seconds = heartbeat_seconds
        self.max_body_bytes = max_body_bytes
        raise_if_invalid(config_path)  # every problem of proactive.yml at file:line, before anything starts
        self.runtime = CopilotRuntime(
            load_config(config_path), max_body_bytes=max_body_bytes, actions_package=actions_package
        )
        self.engine = self.runtime.engine

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("proactive_webhook", __name__)
        runtime = self.runtime

        @bp.listener("before_server_start")
        async def prepare(app: Any, _loop: Any) -> None:
            _skip_access_log_nobody_reads(app)
            await runtime.prepare(_socketio_input(app))

        @bp.listener("after_server_start")
        async def start(app: Any, _loop: Any) -> None:
            runtime.start(app.ctx.agent, _socketio_input(app))
            app.add_task(runtime.driver.run(), name="proactive_driver")

        @bp.listener("before_server_stop")
        async def stop(app: Any, _loop: Any) -> None:
            await runtime.stop()  # closes open streams, else they hold shutdown for Sanic's grace period
            await app.cancel_task("proactive_driver", raise_exception=False)

        async def health(request: Request) -> HTTPResponse:
            return response.json(runtime.health(request.app.ctx.agent))

        for path in ("/", "/health"):
            bp.add_route(health, path, methods=["GET"], name="health" + path.replace("/", "_"))

        @_answers_errors
        async def capture(request: Request) -> HTTPResponse:
            body, content_type = request.body or b"", request.content_type or ""
            return response.json(await runtime.capture(
                body, content_type=content_type, ip=_client_ip(request), path=request.path, received_at=time.time()
            ))

        for path in CAPTURE_PATHS + ("/events",):
            bp.add_route(capture, path, methods=["POST"], name="capture" + path.replace("/", "_"))

        @bp.post("/sources/<source>")
        @_answers_errors
        async def push(request: Request, source: str) -> HTTPResponse:  # destinations, connectors
            return response.json(await runtime.push(
                source, request.body or b"", request.headers, ip=_client_ip(request), path=request.path, received_at=time.time()
            ))

        @bp.get("/stream/<user_id>")
        @_answers_errors
        async def stream(request: Request, user_id: str) -> None:
            user_id = self._verified_user(request, user_id)
            # EventSource resends the last id it saw when it reconnects.
            last_event_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
            subscription = await runtime.open_stream(user_id, last_event_id)
            # A stream that comes with no position gets one: a cursor as its first event id.
            # One that comes with a position keeps it until its next offer (a new cursor sent
            # before the offers it is replaying would skip them on the next reconnect).
            cursor = None if last_event_id else stream_cursor(subscription.opened_at)
            try:
                await self._send_events(request, subscription, cursor)
            finally:
                await runtime.close_stream(subscription)

        @bp.post("/inject")
        @_answers_errors
        async def inject(request: Request) -> HTTPResponse:
            body = self._json_object(request)
            sender_id = require_identifier(body.get("sender_id"), "sender_id")
            follow_up = await runtime.open_chat(
                request.app.ctx.agent,
                _socketio_input(request.app),
                sender_id=sender_id,
                question=text_field(body, "body", limit=4000),
                user_id=self._verified_user(request, body.get("user_id")),
                trigger_id=_optional_identifier(body, "trigger_id"),
                offer_id=_optional_identifier(body, "offer_id"),
            )
            return response.json({"status": "delivered", "sender_id": sender_id, "follow_up": follow_up})

        @bp.post("/tour/start")
        @_answers_errors
        async def tour_start(request: Request) -> HTTPResponse:
            body = self._json_object(request)
            started = await runtime.start_tour(
                self._verified_user(request, body.get("user_id")), require_identifier(body.get("tour_id"), "tour_id"),
                _optional_identifier(body, "offer_id"),
            )
            return response.json({"tour_id": started.tour_id, "flow_id": started.flow_id, "session_id": started.session_id})

        @bp.post("/tour/step")
        @_answers_errors
        async def tour_step(request: Request) -> HTTPResponse:
            body = self._json_object(request)
            tour = await runtime.tour_step(
                self._verified_user(request, body.get("user_id")), _optional_identifier(body, "offer_id"), body.get("step")
            )
            return response.json({"status": "ok", "tour_id": tour["tour_id"]})

        @bp.post("/tour/end")
        @_answers_errors
        async def tour_end(request: Request) -> HTTPResponse:
            body = self._json_object(request)
            tour = await runtime.end_tour(
                self._verified_user(request, body.get("user_id")), _optional_identifier(body, "offer_id"),
                body.get("outcome"), body.get("reason"), body.get("step"),
            )
            return response.json({"status": "ok", "tour_id": tour["tour_id"]})

        @bp.post("/offer/event")
        @_answers_errors
        async def offer_event(request: Request) -> HTTPResponse:  # shown, Show me, Open chat, dismissed
            body = self._json_object(request)
            recorded = await runtime.offer_event(
                self._verified_user(request, body.get("user_id")), require_identifier(body.get("offer_id"), "offer_id"),
                body.get("event"), body.get("reason"),
            )
            return response.json({"status": "ok", "recorded": recorded})

        @bp.get("/metrics")
        @_answers_errors
        async def metrics(request: Request) -> HTTPResponse:
            text, content_type = runtime.metrics(request.headers.get("Authorization"))
            return response.raw(text, content_type=content_type)

        @bp.get("/insights/funnel")
        @_answers_errors
        async def insights_funnel(request: Request) -> HTTPResponse:
            return response.json(await runtime.funnel(
                request.headers.get("Authorization"),
                first_day=request.args.get("from"), last_day=request.args.get("to"),
                trigger_id=request.args.get("trigger"),
            ))

        if runtime.config.identity.debug_route:

            @bp.get("/debug/<user_id>")
            @_answers_errors
            async def debug(request: Request, user_id: str) -> HTTPResponse:
                return response.json(await runtime.debug(self._verified_user(request, user_id)))

        return bp

    async def _send_events(self, request: Request, subscription: Subscription, cursor: Optional[str]) -> None:
        """Server-Sent Events: ``retry:`` and the ``cursor`` id if any, then each offer as
        ``event: proactive`` with its id, heartbeats while idle (proxies and Sanic cut idle
        streams), until the server closes it."""
        sse = await request.respond(
            content_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        await sse.send("retry: 3000\n" + (f"id: {cursor}\n" if cursor else "") + "\n")
        while (item := await subscription.next(self.heartbeat_seconds)) is not CLOSED:
            if isinstance(item, Offer):
                data = json.dumps(item.to_dict(), ensure_ascii=False)
                await sse.send(f"id: {item.offer_id}\nevent: proactive\ndata: {data}\n\n")
            else:
                await sse.send(": heartbeat\n\n")
        await sse.eof()

    def _verified_user(self, request: Request, user_id: Any) -> str:
        """The user id of a path or body, once it is well-formed and the request proved it."""
        verified = require_identifier(user_id, "user_id")
        self.runtime.identity.verify(verified, request.headers.get(HEADER) or request.args.get(QUERY))
        return verified

    def _json_object(self, request: Request) -> Dict[str, Any]:
        return json_object(request.body or b"", max_bytes=self.max_body_bytes)


def _answers_errors(handler: Handler) -> Handler:
    """Any ``ProactiveError`` becomes its status with ``{"error": …}``, logged once."""

    @functools.wraps(handler)
    async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Optional[HTTPResponse]:
        try:
            return await handler(request, *args, **kwargs)
        except ProactiveError as e:
            if not e.logged:
                logger.warning("%s %s -> %d: %s", request.method, request.path, e.status, e)
            return response.json({"error": str(e)}, status=e.status, headers=e.headers())

    return wrapped


def _client_ip(request: Request) -> str:
    """The client's address for the per-IP limits: behind a balancer, the one it forwarded in
    X-Forwarded-For (Sanic reads it only when told to trust the proxy: SANIC_PROXIES_COUNT),
    else the peer's."""
    forwarded: str = request.remote_addr
    return forwarded or request.ip


def _optional_identifier(body: Dict[str, Any], key: str) -> Optional[str]:
    return None if body.get(key) is None else require_identifier(body[key], key)


def _socketio_input(app: Any) -> Optional[InputChannel]:
    channels = getattr(app.ctx, "input_channels", None) or []
    return next((c for c in channels if c.name() == "socketio"), None)


def _skip_access_log_nobody_reads(app: Any) -> None:
    # Sanic builds every request's access-log record (its URL, host, size) before the logger
    # drops it, and Rasa sets that logger to LOG_LEVEL_LIBRARIES (ERROR by default): about 4 %
    # of an ingest request. Built only when the level lets it through, so the lines stay the same.
    app.config.ACCESS_LOG = app.config.ACCESS_LOG and access_logger.isEnabledFor(logging.INFO)


def _configure_logging() -> None:
    # Rasa sets levels on the `rasa` logger tree only; ours would stay at WARNING.
    level = os.environ.get("LOG_LEVEL", "INFO")
    for name in ("addons", "channels", "actions"):
        logging.getLogger(name).setLevel(level)
    # The SDK logs every state transition at WARNING with advice for another host app.
    logging.getLogger("autoplay_sdk.agent_state.v2.session_state").setLevel(logging.ERROR)

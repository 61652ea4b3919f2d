"""The proactive copilot's HTTP surface inside ``rasa run``, under ``/webhooks/proactive``.

Registered in ``credentials.yml`` by module path; its block there holds the channel's
settings (see ``from_credentials``). Handlers parse, call the engine in ``addons``, and
answer JSON; bad input gets a 4xx saying what is wrong.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from addons.answers import grounded
from addons.rasa.chat import ChatNotReady, FollowUpRequest, send_proactive_question
from addons.config import load_config
from addons.offers.delivery import CLOSED
from addons.rasa.driver import ProactiveDriver, tune_gc_for_serving
from addons.offers.engine import NoActiveTour, ProactiveEngine, UnknownTour, UnknownUser
from addons.answers.grounded import GroundedAssistant
from addons.security.identity import HEADER, QUERY, Forbidden, IdentityError, IdentityVerifier
from addons.rasa.inprocess_actions import InProcessActionEndpoint
from addons.offers.ingest import IngestError, PayloadTooLarge, decode_capture_body, loads_json, normalise_batch, require_identifier
from addons.security.limits import IngestGuard, RateLimited, UnknownProjectKey
from addons.answers.llm import resolve_llm
from channels.socketio import ProactiveSocketIOInput

logger = logging.getLogger(__name__)

# posthog-js posts captures to <api_host>/e/; older clients and SDKs use the others.
CAPTURE_PATHS = ("/e/", "/i/v0/e/", "/batch/", "/capture/", "/track/")


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
        self.config = load_config(config_path)
        self.engine = ProactiveEngine(self.config)
        self.driver = ProactiveDriver(self.engine, self.config.driver.tick_seconds)
        self.heartbeat_seconds = heartbeat_seconds
        self.max_body_bytes = max_body_bytes
        self.actions_package = actions_package
        self.llm = resolve_llm(self.config.llm, os.environ)
        self.identity = IdentityVerifier.from_config(self.config.identity, os.environ)
        self.ingest_guard = IngestGuard(self.config.ingest)
        self.assistant: Optional[GroundedAssistant] = None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("proactive_webhook", __name__)
        engine = self.engine

        @bp.listener("after_server_start")
        async def start(app: Any, _loop: Any) -> None:
            if self.actions_package and app.ctx.agent is not None:
                InProcessActionEndpoint.install(app.ctx.agent, self.actions_package)
            chat = _socketio_input(app)
            sockets = chat if isinstance(chat, ProactiveSocketIOInput) else None
            if sockets is not None:
                sockets.identity = self.identity
                sockets.add_message_listener(self._on_chat_message)
            self.assistant = GroundedAssistant(
                engine,
                self.llm,
                users_of=sockets.sessions.user_of if sockets else (lambda _sender_id: None),
                user_id_key=sockets.user_id_key if sockets else "userId",
                trust_metadata=not self.identity.required,
            )
            grounded.install(self.assistant)  # for the in-process reply action
            logger.info("proactive LLM: %s", self.llm.describe())
            tune_gc_for_serving()  # full GCs over Rasa's heap and the session store stalled the loop (BENCHMARKS.md)
            app.add_task(self.driver.run(), name="proactive_driver")

        @bp.listener("before_server_stop")
        async def stop(app: Any, _loop: Any) -> None:
            engine.hub.close_all()  # else open streams hold shutdown for Sanic's grace period
            await app.cancel_task("proactive_driver", raise_exception=False)
            if self.assistant is not None:
                grounded.install(None)
                await self.assistant.aclose()

        @bp.get("/")
        @bp.get("/health")
        async def health(request: Request) -> HTTPResponse:
            agent = request.app.ctx.agent
            chat = _socketio_input(request.app)
            return response.json(
                {
                    "status": "ok",
                    "agent_ready": bool(agent and agent.is_ready()),
                    "driver": {"running": self.driver.running, "ticks": self.driver.ticks},
                    "sessions": engine.activity.session_count(),
                    "subscribers": engine.hub.subscriber_count(),
                    "pending_offers": engine.hub.pending_count(),
                    "chat_sessions": chat.sessions.open_count() if isinstance(chat, ProactiveSocketIOInput) else None,
                }
            )

        @_json_errors
        async def capture(request: Request) -> HTTPResponse:
            received_at = time.time()
            self.ingest_guard.admit_request(request.ip, received_at)
            self._check_size(request)
            batch = decode_capture_body(
                request.body, content_type=request.content_type or "", max_bytes=self.max_body_bytes
            )
            self.ingest_guard.admit_project(batch, request.ip, received_at)
            result = normalise_batch(batch, received_at=received_at, skew=engine.clock_skew)
            self.ingest_guard.admit_events(result.actions, request.ip, received_at)
            for rejected in result.rejected:
                logger.warning("rejected event %d of %s: %s", rejected.index, request.path, rejected.reason)
            if batch.events and not result.actions and result.rejected and not result.skipped:
                raise IngestError(f"no event accepted: {result.rejected[0].reason}")
            engine.ingest(result, now=received_at)
            return response.json(
                {
                    "status": 1,
                    "accepted": len(result.actions),
                    "skipped": result.skipped,
                    "rejected": [{"index": r.index, "reason": r.reason} for r in result.rejected],
                }
            )

        for path in CAPTURE_PATHS + ("/events",):
            bp.add_route(capture, path, methods=["POST"], name="capture" + path.replace("/", "_"))

        @bp.get("/stream/<user_id>")
        async def stream(request: Request, user_id: str) -> Optional[HTTPResponse]:
            try:
                user_id = self._verified_user(request, user_id)
            except IngestError as e:
                return _error(request, 400, str(e))
            except IdentityError as e:
                return _error(request, e.status, str(e))
            # EventSource resends the last id it saw when it reconnects.
            last_event_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
            subscription = engine.subscribe(user_id, last_event_id=last_event_id)
            try:
                sse = await request.respond(
                    content_type="text/event-stream; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
                await sse.send("retry: 3000\n\n")
                while True:
                    item = await subscription.next(self.heartbeat_seconds)
                    if item is CLOSED:
                        break
                    if item is None:
                        await sse.send(": heartbeat\n\n")  # idle streams are cut by proxies and Sanic
                    else:
                        data = json.dumps(item.to_dict(), ensure_ascii=False)
                        await sse.send(f"id: {item.offer_id}\nevent: proactive\ndata: {data}\n\n")
                await sse.eof()
            finally:
                engine.hub.unsubscribe(subscription)
            return None

        @bp.post("/inject")
        @_json_errors
        async def inject(request: Request) -> HTTPResponse:
            body = self._json_object(request)
            sender_id = require_identifier(body.get("sender_id"), "sender_id")
            question = _text_field(body, "body", limit=4000)
            user_id = self._verified_user(request, body.get("user_id"))
            trigger_id = _optional_identifier(body, "trigger_id")
            chat = _socketio_input(request.app)
            output = chat.get_output_channel() if chat else None
            if output is None:
                raise ChatNotReady("no socketio channel is configured in credentials.yml")
            if isinstance(chat, ProactiveSocketIOInput) and not chat.sessions.is_open(sender_id):
                raise UnknownUser(
                    f"no open chat session {sender_id!r}: pass the widget's chat session id "
                    "(sessionStorage chat_session.session_id), not the app user id"
                )
            if isinstance(chat, ProactiveSocketIOInput):
                chat.sessions.bind_user(sender_id, user_id)  # an unclaimed session becomes theirs
                if chat.sessions.user_of(sender_id) != user_id:
                    raise Forbidden(f"chat session {sender_id!r} belongs to another user")
            engine.engage_chat(user_id, trigger_id)
            question_request = FollowUpRequest(sender_id, user_id, trigger_id, question)
            follow_up = await send_proactive_question(
                request.app.ctx.agent,
                output,
                question_request,
                self.assistant.follow_up if self.assistant else None,
                min_gap_s=self.config.chat.follow_up_gap_s,
            )
            return response.json({"status": "delivered", "sender_id": sender_id, "follow_up": follow_up is not None})

        @bp.post("/tour/start")
        @_json_errors
        async def tour_start(request: Request) -> HTTPResponse:
            body = self._json_object(request)
            started = engine.start_tour(
                self._verified_user(request, body.get("user_id")), require_identifier(body.get("tour_id"), "tour_id")
            )
            return response.json({"tour_id": started.tour_id, "flow_id": started.flow_id, "session_id": started.session_id})

        @bp.post("/tour/step")
        @_json_errors
        async def tour_step(request: Request) -> HTTPResponse:
            tour = engine.record_tour_step(self._verified_user(request, self._json_object(request).get("user_id")))
            return response.json({"status": "ok", "tour_id": tour["tour_id"]})

        @bp.post("/tour/end")
        @_json_errors
        async def tour_end(request: Request) -> HTTPResponse:
            tour = engine.end_tour(self._verified_user(request, self._json_object(request).get("user_id")))
            return response.json({"status": "ok", "tour_id": tour["tour_id"]})

        if self.config.identity.debug_route:

            @bp.get("/debug/<user_id>")
            @_json_errors
            async def debug(request: Request, user_id: str) -> HTTPResponse:
                return response.json(engine.debug(self._verified_user(request, user_id)))

        return bp

    def _on_chat_message(self, *, user_id: str, sender_id: str) -> None:
        if self.engine.on_chat_message(user_id):
            logger.info("proactive chat message: user=%s sender=%s; offers paused", user_id, sender_id)

    def _verified_user(self, request: Request, user_id: Any) -> str:
        """The user id of a path or body, once it is well-formed and the request proved it."""
        user_id = require_identifier(user_id, "user_id")
        self.identity.verify(user_id, _presented_hash(request))
        return user_id

    def _check_size(self, request: Request) -> None:
        if len(request.body or b"") > self.max_body_bytes:
            raise PayloadTooLarge(f"body is {len(request.body)} bytes; the limit is {self.max_body_bytes}")

    def _json_object(self, request: Request) -> Dict[str, Any]:
        self._check_size(request)
        try:
            body = loads_json(request.body or b"")
        except ValueError:
            raise IngestError("body is not valid JSON") from None
        if not isinstance(body, dict):
            raise IngestError(f"body must be a JSON object, got {type(body).__name__}")
        return body


def _json_errors(handler: Callable[..., Awaitable[HTTPResponse]]) -> Callable[..., Awaitable[HTTPResponse]]:
    """Map the engine's errors to 4xx/503 JSON answers, each logged once."""

    @functools.wraps(handler)
    async def wrapped(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
        try:
            return await handler(request, *args, **kwargs)
        except PayloadTooLarge as e:
            return _error(request, 413, str(e))
        except UnknownProjectKey as e:
            return response.json({"error": str(e)}, status=401)  # logged once per sender by the guard
        except IdentityError as e:
            return _error(request, e.status, str(e))
        except RateLimited as e:
            # Logged once per sender and reason by the guard, not once per request.
            headers = {"Retry-After": str(max(1, round(e.retry_after_s)))}
            return response.json({"error": str(e)}, status=429, headers=headers)
        except IngestError as e:
            return _error(request, 400, str(e))
        except (UnknownUser, UnknownTour) as e:
            return _error(request, 404, str(e.args[0]))
        except NoActiveTour as e:
            return _error(request, 409, str(e.args[0]))
        except ChatNotReady as e:
            return _error(request, 503, str(e))

    return wrapped


def _error(request: Request, status: int, message: str) -> HTTPResponse:
    logger.warning("%s %s -> %d: %s", request.method, request.path, status, message)
    return response.json({"error": message}, status=status)


def _presented_hash(request: Request) -> Optional[str]:
    return request.headers.get(HEADER) or request.args.get(QUERY)


def _socketio_input(app: Any) -> Optional[InputChannel]:
    channels = getattr(app.ctx, "input_channels", None) or []
    return next((c for c in channels if c.name() == "socketio"), None)


def _text_field(body: Dict[str, Any], key: str, *, limit: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise IngestError(f"'{key}' must be a non-empty string")
    if len(value) > limit:
        raise IngestError(f"'{key}' is longer than {limit} characters")
    return value.strip()


def _optional_identifier(body: Dict[str, Any], key: str) -> Optional[str]:
    return None if body.get(key) is None else require_identifier(body.get(key), key)


def _configure_logging() -> None:
    # Rasa sets levels on the `rasa` logger tree only; ours would stay at WARNING.
    level = os.environ.get("LOG_LEVEL", "INFO")
    for name in ("addons", "channels", "actions"):
        logging.getLogger(name).setLevel(level)
    # The SDK logs every state transition at WARNING with advice for another host app.
    logging.getLogger("autoplay_sdk.agent_state.v2.session_state").setLevel(logging.ERROR)

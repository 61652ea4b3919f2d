"""Rasa's socket.io channel, as rasa-webchat needs it, plus what the copilot must know.

Registered in ``credentials.yml`` as ``channels.socketio.ProactiveSocketIOInput`` and still
named ``socketio``, so it is the output channel Rasa and ``/inject`` look up by that name.
Beyond the stock channel it:

* awaits ``enter_room`` in ``session_request``: with python-socketio >= 5.10 the stock
  channel's un-awaited call joins no room, so with ``session_persistence: true`` no bot
  message reaches the widget (RasaHQ/rasa#13027);
* ignores empty user messages, so nothing answers a blank ``user_uttered`` with a greeting;
* tells listeners about each user message with the app user id from the widget's
  ``customData`` (``metadata_key: customData``), which the proactive gate needs;
* keeps ``ChatSessions``: which chat sessions have a socket, so ``/inject`` can refuse a
  sender id nobody listens on instead of "succeeding" into an empty room;
* verifies who a socket is: the widget connects with ``?user_id=…&user_hash=…`` (and sends
  ``userId``/``userHash`` in its ``customData``); a wrong signature is refused, and a chat
  session belongs to the user its socket proved to be.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Optional, Protocol, Text
from urllib.parse import parse_qs

from rasa.core.channels.channel import UserMessage, decode_bearer_token
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint
from socketio import AsyncRedisManager

from addons.errors import ProactiveError
from addons.rasa.chat_sessions import ChatSessionRegistry, ChatSessions
from addons.security.identity import QUERY, IdentityVerifier
from addons.stores.memory import InMemoryChatOwners

logger = logging.getLogger(__name__)


class ChatMessageListener(Protocol):
    async def __call__(self, *, user_id: str, sender_id: str) -> None:
        ...


class ProactiveSocketIOInput(SocketIOInput):
    def __init__(self, *args: Any, user_id_key: str = "userId", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user_id_key = user_id_key
        self.user_hash_key = "userHash"
        # Replaced by the proactive channel's at server start (``attach``); no socket connects before.
        self.sessions: ChatSessionRegistry = ChatSessions(InMemoryChatOwners())
        self.identity: Optional[IdentityVerifier] = None
        self._listeners: List[ChatMessageListener] = []

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "ProactiveSocketIOInput":
        credentials = credentials or {}
        return cls(
            credentials.get("user_message_evt", "user_uttered"),
            credentials.get("bot_message_evt", "bot_uttered"),
            credentials.get("namespace"),
            credentials.get("session_persistence", False),
            credentials.get("socketio_path", "/socket.io"),
            credentials.get("jwt_key"),
            credentials.get("jwt_method", "HS256"),
            credentials.get("metadata_key", "customData"),
            user_id_key=credentials.get("user_id_key", "userId"),
        )

    def attach(self, sessions: ChatSessionRegistry, identity: IdentityVerifier, listener: ChatMessageListener) -> None:
        """The proactive channel's chat sessions, identity checks and message listener."""
        self.sessions = sessions
        self.identity = identity
        self._listeners.append(listener)

    def share_through_redis(self, url: str) -> None:
        """Before the server starts: emits go through Redis (python-socketio's client manager),
        so a bot message sent on one replica reaches the socket another holds."""
        assert self.sio is not None, "the blueprint is built before the server starts"
        manager = AsyncRedisManager(
            url, channel="proactive-socketio",
            # Connecting never hangs on a Redis that is away (no read timeout: the subscriber
            # waits on its channel for as long as it is quiet).
            redis_options={"socket_connect_timeout": 2.0},
        )
        manager.set_server(self.sio)
        self.sio.manager = manager

    async def user_of_message(self, message: UserMessage) -> Optional[str]:
        """The app user behind a chat message: the session's verified user, else (checks
        off, or a widget that proves itself per message) its ``customData``."""
        user_id = await self.sessions.user_of(message.sender_id)
        if user_id is not None:
            return user_id
        metadata = message.metadata or {}
        claimed = metadata.get(self.user_id_key)
        if not isinstance(claimed, str) or not claimed:
            return None
        if self.identity is not None:
            presented = metadata.get(self.user_hash_key)
            if self.identity.verified(claimed, presented if isinstance(presented, str) else None) is None:
                logger.warning("chat message on %s claims user %r without a valid signature; treated as anonymous",
                               message.sender_id, claimed)
                return None
        await self.sessions.bind_user(message.sender_id, claimed)
        return await self.sessions.user_of(message.sender_id)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        async def observed(message: UserMessage) -> None:
            if not (message.text or "").strip():
                logger.debug("ignored an empty message from %s", message.sender_id)
                return
            try:
                user_id = await self.user_of_message(message)
            except ProactiveError as e:  # the shared store is down: the message is still answered
                logger.log(_level(e), "chat message on %s: its user is unknown for now: %s", message.sender_id, e)
                user_id = None
            if user_id is not None:
                for listener in self._listeners:
                    try:
                        await listener(user_id=user_id, sender_id=message.sender_id)
                    except Exception:
                        logger.exception("chat message listener failed; the message is still handled")
            await on_new_message(message)

        blueprint: Blueprint = super().blueprint(observed)
        sio = self.sio
        assert sio is not None

        # Registering a handler again for an event replaces the stock one.
        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: Text, environ: Dict[str, Any], auth: Optional[Dict[str, Any]] = None) -> bool:
            if self.jwt_key and not (auth and auth.get("token") and decode_bearer_token(auth["token"], self.jwt_key, self.jwt_algorithm)):
                return False
            query = parse_qs(environ.get("QUERY_STRING", ""))
            user_id = (query.get("user_id") or [None])[0]
            if user_id and self.identity is not None:
                verified = self.identity.verified(user_id, (query.get(QUERY) or [None])[0])
                if verified is None and self.identity.required:
                    logger.warning("socket %s refused: no valid identity signature for user %r", sid, user_id)
                    return False
                if verified is not None:
                    await self.sessions.connected(sid, verified)
            return True

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, data: Optional[Dict[str, Any]]) -> None:
            data = data if isinstance(data, dict) else {}
            if not data.get("session_id"):
                data["session_id"] = uuid.uuid4().hex
            session_id = str(data["session_id"])
            if self.session_persistence:
                await sio.enter_room(sid, session_id)
            sender_id = session_id if self.session_persistence else sid  # without persistence the socket id is the sender id
            try:
                await self.sessions.joined(sender_id, sid)
            except ProactiveError as e:  # the shared store is down: the chat works, /inject cannot find it yet
                logger.log(_level(e), "socket %s joined chat session %s unregistered: %s", sid, sender_id, e)
            await sio.emit("session_confirm", session_id, room=sid)
            logger.debug("socket %s joined chat session %s", sid, session_id)

        @sio.on("disconnect", namespace=self.namespace)
        async def disconnect(sid: Text, *reason: Any) -> None:
            try:
                await self.sessions.left(sid)
            except ProactiveError as e:
                logger.log(_level(e), "socket %s left unregistered: %s", sid, e)
            logger.debug("socket %s disconnected", sid)

        return blueprint


def _level(error: ProactiveError) -> int:
    """A store outage is logged once by the store (``logged``); the chat event only at DEBUG."""
    return logging.DEBUG if error.logged else logging.WARNING

"""Which chat sessions (Rasa sender ids) have a live socket, and whose they are.

Injecting into a sender id nobody joined "succeeds" and reaches no one, so ``/inject`` asks
here first. ``ChatSessions`` keeps it in this process (sockets are this process's live
connections; owners in the ``ChatOwnerStore``); ``addons.rasa.shared_chat_sessions`` keeps it
in Redis, so ``/inject`` on one replica finds a socket held by another. Both are coroutines
throughout, as their callers (socket.io handlers, routes) are.
"""

from __future__ import annotations

from typing import Dict, Optional, Protocol, Set

from addons.errors import UnknownChatSession
from addons.security.identity import Forbidden
from addons.stores.protocols import ChatOwnerStore


class ChatSessionRegistry(Protocol):
    async def start(self) -> None:
        """The server is up (before any socket connects)."""

    async def connected(self, sid: str, user_id: str) -> None:
        """A socket connected with a verified user id."""

    async def joined(self, session_id: str, sid: str) -> None:
        """The socket joined a chat session; a verified socket makes the session its user's."""

    async def left(self, sid: str) -> None:
        """The socket disconnected; a session with no socket left has no owner any more."""

    async def bind_user(self, session_id: str, user_id: str) -> None:
        """Unverified binding (identity checks off): the widget's customData user."""

    async def claim_for(self, session_id: str, user_id: str) -> None:
        """The open chat session, for this user: an unclaimed one becomes theirs; another
        user's is refused (``Forbidden``); none open is ``UnknownChatSession``."""

    async def user_of(self, session_id: str) -> Optional[str]:
        ...

    def open_count(self) -> int:
        """Chat sessions with a socket on this process (for /health)."""

    async def close(self) -> None:
        ...


def no_open_session(session_id: str) -> UnknownChatSession:
    return UnknownChatSession(
        f"no open chat session {session_id!r}: pass the widget's chat session id "
        "(sessionStorage chat_session.session_id), not the app user id"
    )


def owned_by_another(session_id: str) -> Forbidden:
    return Forbidden(f"chat session {session_id!r} belongs to another user")


class ChatSessions:
    """The registry of one process (the default)."""

    def __init__(self, owners: ChatOwnerStore) -> None:
        self._owners = owners
        self._sockets: Dict[str, Set[str]] = {}
        self._session_of_socket: Dict[str, str] = {}
        self._socket_users: Dict[str, str] = {}  # sid → the user it proved to be at connect

    async def start(self) -> None:
        pass

    async def connected(self, sid: str, user_id: str) -> None:
        self._socket_users[sid] = user_id

    async def joined(self, session_id: str, sid: str) -> None:
        user_id = self._socket_users.get(sid)
        self._leave_session(sid)
        self._sockets.setdefault(session_id, set()).add(sid)
        self._session_of_socket[sid] = session_id
        if user_id is not None:
            self._owners.claim(session_id, user_id)

    async def left(self, sid: str) -> None:
        self._socket_users.pop(sid, None)
        self._leave_session(sid)

    async def bind_user(self, session_id: str, user_id: str) -> None:
        if session_id in self._sockets:
            self._owners.claim(session_id, user_id)

    async def claim_for(self, session_id: str, user_id: str) -> None:
        if session_id not in self._sockets:
            raise no_open_session(session_id)
        if self._owners.claim(session_id, user_id) != user_id:
            raise owned_by_another(session_id)

    async def user_of(self, session_id: str) -> Optional[str]:
        return self._owners.owner(session_id)

    def open_count(self) -> int:
        return len(self._sockets)

    async def close(self) -> None:
        pass

    def _leave_session(self, sid: str) -> None:
        session_id = self._session_of_socket.pop(sid, None)
        if session_id is None:
            return
        sockets = self._sockets.get(session_id)
        if sockets is not None:
            sockets.discard(sid)
            if not sockets:
                del self._sockets[session_id]
                self._owners.release(session_id)

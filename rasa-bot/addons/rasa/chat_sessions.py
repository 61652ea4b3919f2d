"""Which chat sessions (Rasa sender ids) have a live socket in this process, and whose they are.

Injecting into a sender id nobody joined "succeeds" and reaches no one, so ``/inject`` asks
here first. Sockets are this process's live connections; ownership (session → app user) is
in the ``ChatOwnerStore``, with the other state.
"""

from __future__ import annotations

from typing import Dict, Optional, Set

from addons.errors import UnknownChatSession
from addons.security.identity import Forbidden
from addons.stores.protocols import ChatOwnerStore


class ChatSessions:
    def __init__(self, owners: ChatOwnerStore) -> None:
        self._owners = owners
        self._sockets: Dict[str, Set[str]] = {}
        self._session_of_socket: Dict[str, str] = {}
        self._socket_users: Dict[str, str] = {}  # sid → the user it proved to be at connect

    def connected(self, sid: str, user_id: str) -> None:
        """A socket connected with a verified user id."""
        self._socket_users[sid] = user_id

    def joined(self, session_id: str, sid: str) -> None:
        """The socket joined a chat session; a verified socket makes the session its user's."""
        user_id = self._socket_users.get(sid)
        self.left(sid, disconnected=False)
        self._sockets.setdefault(session_id, set()).add(sid)
        self._session_of_socket[sid] = session_id
        if user_id is not None:
            self._socket_users[sid] = user_id
            self._owners.claim(session_id, user_id)

    def left(self, sid: str, *, disconnected: bool = True) -> None:
        if disconnected:
            self._socket_users.pop(sid, None)
        session_id = self._session_of_socket.pop(sid, None)
        if session_id is None:
            return
        sockets = self._sockets.get(session_id)
        if sockets is not None:
            sockets.discard(sid)
            if not sockets:
                del self._sockets[session_id]
                self._owners.release(session_id)

    def bind_user(self, session_id: str, user_id: str) -> None:
        """Unverified binding (identity checks off): the widget's customData user."""
        if session_id in self._sockets:
            self._owners.claim(session_id, user_id)

    def claim_for(self, session_id: str, user_id: str) -> None:
        """The open chat session, for this user: an unclaimed one becomes theirs; another
        user's is refused."""
        if not self.is_open(session_id):
            raise UnknownChatSession(
                f"no open chat session {session_id!r}: pass the widget's chat session id "
                "(sessionStorage chat_session.session_id), not the app user id"
            )
        if self._owners.claim(session_id, user_id) != user_id:
            raise Forbidden(f"chat session {session_id!r} belongs to another user")

    def is_open(self, session_id: str) -> bool:
        return session_id in self._sockets

    def user_of(self, session_id: str) -> Optional[str]:
        return self._owners.owner(session_id)

    def open_count(self) -> int:
        return len(self._sockets)

"""Putting the proactive question into a user's open chat, inside the running Rasa agent.

``inject_intent`` does what Rasa's ``POST /conversations/<id>/trigger_intent`` route does
(lock the conversation, fetch and update its tracker, trigger) without an HTTP hop.
``ChatSessions`` knows which chat sessions have a live socket, because injecting into a
sender id nobody joined "succeeds" and reaches no one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Protocol, Set

from rasa.core.agent import Agent
from rasa.core.channels.channel import OutputChannel
from rasa.shared.core.constants import EXTERNAL_MESSAGE_PREFIX
from rasa.shared.core.events import UserUttered

from addons.domain import PROACTIVE_ENTITY, PROACTIVE_INTENT

logger = logging.getLogger(__name__)

class ChatNotReady(RuntimeError):
    """The agent has no model loaded yet, or its domain lacks the proactive intent."""


@dataclass(frozen=True)
class FollowUpRequest:
    """What a follow-up writer gets after the question bubble has landed."""

    sender_id: str
    user_id: Optional[str]
    trigger_id: Optional[str]
    question: str


class FollowUpWriter(Protocol):
    """Writes the second bubble after the proactive question; None sends nothing."""

    async def write(self, request: FollowUpRequest) -> Optional[str]:
        ...


class ChatSessions:
    """Chat session ids (Rasa sender ids) with the sockets that joined them, and their users."""

    def __init__(self) -> None:
        self._sockets: Dict[str, Set[str]] = {}
        self._session_of_socket: Dict[str, str] = {}
        self._users: Dict[str, str] = {}
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
            self._users.setdefault(session_id, user_id)

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
                self._users.pop(session_id, None)

    def bind_user(self, session_id: str, user_id: str) -> None:
        """Unverified binding (identity checks off): the widget's customData user."""
        if session_id in self._sockets:
            self._users.setdefault(session_id, user_id)

    def is_open(self, session_id: str) -> bool:
        return session_id in self._sockets

    def user_of(self, session_id: str) -> Optional[str]:
        return self._users.get(session_id)

    def open_count(self) -> int:
        return len(self._sockets)


async def inject_intent(
    agent: Agent, output_channel: OutputChannel, sender_id: str, intent: str, entities: List[Dict[str, Any]]
) -> None:
    if not agent.is_ready() or agent.processor is None:
        raise ChatNotReady("the Rasa agent has no model loaded yet")
    if intent not in agent.domain.intents:
        raise ChatNotReady(f"intent {intent!r} is not in the domain; add it to domain.yml and retrain")
    async with agent.lock_store.lock(sender_id):
        tracker = await agent.processor.fetch_tracker_and_update_session(sender_id)
        await agent.trigger_intent(intent_name=intent, entities=entities, output_channel=output_channel, tracker=tracker)


async def user_spoke_since(agent: Agent, sender_id: str, since: float) -> bool:
    """Whether the conversation has a user message newer than ``since`` (epoch seconds)."""
    tracker = await agent.tracker_store.retrieve(sender_id)
    if tracker is None:
        return False
    for event in reversed(tracker.events):
        if event.timestamp <= since:
            return False
        if isinstance(event, UserUttered) and not (event.text or "").startswith(EXTERNAL_MESSAGE_PREFIX):
            return True
    return False


async def send_proactive_question(
    agent: Agent,
    output_channel: OutputChannel,
    request: FollowUpRequest,
    follow_up: Optional[FollowUpWriter] = None,
    min_gap_s: float = 0.0,
) -> Optional[str]:
    """Bubble 1 is the question; bubble 2, if a writer is configured, its follow-up.

    The question lands before the follow-up is even asked for, so a failing follow-up
    never costs the user the question. The follow-up lands at least ``min_gap_s`` after
    the question (the writer's own time counts towards it; the wait is an ``asyncio``
    sleep, so nobody else waits). Returns the follow-up text sent, if any.
    """
    entities = [{"entity": PROACTIVE_ENTITY, "value": request.question}]
    await inject_intent(agent, output_channel, request.sender_id, PROACTIVE_INTENT, entities)
    logger.info(
        "proactive injected question: sender=%s user=%s trigger=%s", request.sender_id, request.user_id, request.trigger_id
    )
    if follow_up is None:
        return None
    loop = asyncio.get_running_loop()
    question_landed = loop.time()
    question_sent_at = time.time()  # tracker events carry wall-clock timestamps
    try:
        text = await follow_up.write(request)
    except Exception:
        logger.exception("follow-up for sender %s failed; the question was delivered", request.sender_id)
        return None
    if not text:
        return None
    remaining = min_gap_s - (loop.time() - question_landed)
    if remaining > 0:
        await asyncio.sleep(remaining)  # two bubbles at once read as one wall of text
    if await user_spoke_since(agent, request.sender_id, question_sent_at):
        # Their message got its own answer; a walkthrough arriving after it is out of context.
        logger.info("proactive follow-up dropped: sender=%s wrote since the question", request.sender_id)
        return None
    await inject_intent(agent, output_channel, request.sender_id, PROACTIVE_INTENT, [{"entity": PROACTIVE_ENTITY, "value": text}])
    logger.info("proactive injected follow-up: sender=%s trigger=%s", request.sender_id, request.trigger_id)
    return text

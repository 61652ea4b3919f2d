"""Putting the proactive question into a user's open chat, inside the running Rasa agent.

``inject_intent`` does what Rasa's ``POST /conversations/<id>/trigger_intent`` route does
(lock the conversation, fetch and update its tracker, trigger) without an HTTP hop.
Which chat sessions have a live socket, and whose they are, is ``addons.rasa.chat_sessions``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Protocol

from rasa.core.agent import Agent
from rasa.core.channels.channel import OutputChannel
from rasa.shared.core.constants import EXTERNAL_MESSAGE_PREFIX
from rasa.shared.core.events import UserUttered

if TYPE_CHECKING:
    from addons.answers.grounded import FollowUp

from addons.domain import PROACTIVE_ENTITY, PROACTIVE_INTENT
from addons.errors import ChatNotReady

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class FollowUpRequest:
    """What a follow-up writer gets after the question bubble has landed."""

    sender_id: str
    user_id: Optional[str]
    trigger_id: Optional[str]
    question: str


@dataclass(frozen=True)
class ProactiveChat:
    """What ``send_proactive_question`` sent: the question (at ``question_sent_at``, epoch
    seconds) and the follow-up, if one went."""

    question_sent_at: float
    follow_up: Optional[FollowUp]


class FollowUpWriter(Protocol):
    """Writes the second bubble after the proactive question; None sends nothing."""

    async def write(self, request: FollowUpRequest) -> Optional[FollowUp]:
        ...


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
) -> ProactiveChat:
    """Bubble 1 is the question; bubble 2, if a writer is configured, its follow-up.

    The question lands before the follow-up is even asked for, so a failing follow-up
    never costs the user the question. The follow-up lands at least ``min_gap_s`` after
    the question (the writer's own time counts towards it; the wait is an ``asyncio``
    sleep, so nobody else waits).
    """
    entities = [{"entity": PROACTIVE_ENTITY, "value": request.question}]
    await inject_intent(agent, output_channel, request.sender_id, PROACTIVE_INTENT, entities)
    question_sent_at = time.time()  # tracker events carry wall-clock timestamps
    logger.info(
        "proactive injected question: sender=%s user=%s trigger=%s", request.sender_id, request.user_id, request.trigger_id
    )
    sent = ProactiveChat(question_sent_at, None)
    if follow_up is None:
        return sent
    loop = asyncio.get_running_loop()
    question_landed = loop.time()
    try:
        written = await follow_up.write(request)
    except Exception:
        logger.exception("follow-up for sender %s failed; the question was delivered", request.sender_id)
        return sent
    if written is None or not written.text:
        return sent
    remaining = min_gap_s - (loop.time() - question_landed)
    if remaining > 0:
        await asyncio.sleep(remaining)  # two bubbles at once read as one wall of text
    if await user_spoke_since(agent, request.sender_id, question_sent_at):
        # Their message got its own answer; a walkthrough arriving after it is out of context.
        logger.info("proactive follow-up dropped: sender=%s wrote since the question", request.sender_id)
        return sent
    await inject_intent(
        agent, output_channel, request.sender_id, PROACTIVE_INTENT, [{"entity": PROACTIVE_ENTITY, "value": written.text}]
    )
    logger.info("proactive injected follow-up: sender=%s trigger=%s", request.sender_id, request.trigger_id)
    return ProactiveChat(question_sent_at, written)

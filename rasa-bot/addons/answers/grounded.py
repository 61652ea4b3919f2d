"""Grounded chat answers: the Open-chat follow-up and reactive replies.

Both read the same grounding (``GroundingSource``: the user's activity, first name, session
summary, and the triggers' how-to text), ask the model through the same prompt assembly,
and pass its answer through the same guard. Whenever the model is not used — none is
configured, it timed out, it failed, or the guard caught an unknown UI name — the user gets
a deterministic answer built from the how-to or the activity alone, and one log line says why.

The channel builds a ``GroundedAssistant`` at server start and ``install``s it here, so the
rasa_sdk action answering chat messages (run in-process) can reach it; served by
``rasa run actions`` instead, ``installed()`` is None and the action says so honestly.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Optional, Protocol, Sequence, Set, Tuple

from addons.config import BuiltinTriggerConfig, ProactiveConfig
from addons.errors import ProactiveError
from addons.answers.guard import UIGuard, render_how_to
from addons.answers.llm import ChatMessage, ChatModel, LLMError, LLMSettings, LLMTimeout, build_model
from addons.answers.prompts import (
    HowTo, UserContext, activity_lines, follow_up_messages, honest_reply, repeated_actions, reply_messages,
)
from addons.answers.summary import SessionSummaries

if TYPE_CHECKING:  # types only: the reply action must import without Rasa (`rasa run actions`)
    from addons.rasa.chat import FollowUpRequest
    from addons.offers.engine import ProactiveEngine

logger = logging.getLogger(__name__)

_BLANK_LINES = re.compile(r"\n\s*\n")

# What the reply action says when it runs without the proactive channel (`rasa run actions`).
NO_ENGINE_REPLY = (
    "I can't see your activity in the app from here, so I can't tailor an answer. "
    "Tell me what you're trying to do."
)


class SummarySource(Protocol):
    def get(self, session_id: str) -> Optional[str]:
        ...


@dataclass(frozen=True)
class ReplyRequest:
    """A chat message to answer: who sent it (Rasa sender id, app user id if known) and what."""

    sender_id: str
    text: str
    user_id: Optional[str] = None


@dataclass(frozen=True)
class Answer:
    text: str
    source: str  # "llm" or "fallback"
    reason: str = ""


@dataclass(frozen=True)
class FollowUp:
    """The Open-chat follow-up bubble, and who wrote it: "model" (the LLM) or "fallback"
    (the how-to as written)."""

    text: str
    source: str


EngineReader = Callable[[str, Callable[["ProactiveEngine"], UserContext]], Awaitable[UserContext]]


class GroundingSource:
    """Reads what the engine knows about a user into a ``UserContext``, and the how-tos.

    ``read`` runs a read on the engine that holds the user's state: the one engine of this
    process by default, or a unit of work on the user's shared state (several replicas)."""

    def __init__(
        self,
        engine: ProactiveEngine,
        *,
        activity_lines: int,
        summaries: Optional[SummarySource] = None,
        read: Optional[EngineReader] = None,
    ) -> None:
        self._engine = engine
        self._lines = activity_lines
        self._summaries = summaries
        self._read = read
        self.how_tos: Tuple[HowTo, ...] = tuple(
            h for h in (_how_to(engine.config, t.id) for t in engine.config.triggers) if h is not None
        )

    async def context(self, user_id: Optional[str]) -> UserContext:
        if not user_id:
            return UserContext()
        if self._read is None:
            return self._context_of(self._engine, user_id)
        try:
            return await self._read(user_id, lambda engine: self._context_of(engine, user_id))
        except ProactiveError as e:  # the shared state is away: answer from the how-to alone
            logger.warning("grounding for user %s without their activity: %s", user_id, e)
            return UserContext(user_id=user_id)

    def _context_of(self, engine: "ProactiveEngine", user_id: str) -> UserContext:
        first_name = engine.stores.first_names.get(user_id)
        session_id = engine.activity.latest_session(user_id)
        if session_id is None:
            return UserContext(user_id=user_id, first_name=first_name)
        last_offer = engine.gate.last_offer(session_id)
        actions = engine.activity.recent_actions(session_id)
        return UserContext(
            user_id=user_id,
            first_name=first_name,
            activity=activity_lines(actions, now=engine.clock(), limit=self._lines),
            repeats=repeated_actions(actions),
            summary=self._summaries.get(session_id) if self._summaries else None,
            last_trigger=last_offer["trigger_id"] if last_offer else None,
        )

    def how_to(self, trigger_id: Optional[str]) -> Optional[HowTo]:
        return next((h for h in self.how_tos if h.trigger_id == trigger_id), None)


class _GroundedWriter:
    def __init__(self, source: GroundingSource, model: Optional[ChatModel], *, vocabulary: Sequence[str], no_model_reason: str = "") -> None:
        self.source = source
        self.model = model
        self.vocabulary = tuple(vocabulary)
        self.no_model_reason = no_model_reason


class GroundedFollowUpWriter(_GroundedWriter):
    """``FollowUpWriter``: the trigger's how-to, rewritten for this user, or verbatim."""

    async def write(self, request: FollowUpRequest) -> Optional[FollowUp]:
        how_to = self.source.how_to(request.trigger_id)
        if how_to is None:
            logger.info("proactive follow-up skipped: trigger %s has no how_to in proactive.yml", request.trigger_id)
            return None
        context = await self.source.context(request.user_id)
        answer = await _ask(
            self.model,
            follow_up_messages(context, how_to),
            UIGuard([*how_to.steps, how_to.offer, *self.vocabulary, *context.labels]),
            fallback=lambda: render_how_to(how_to.steps, first_name=context.first_name),
            no_model_reason=self.no_model_reason,
        )
        _log("proactive follow-up", answer, f"trigger={request.trigger_id} sender={request.sender_id}")
        return FollowUp(answer.text, "model" if answer.source == "llm" else "fallback")


class GroundedAnswerer(_GroundedWriter):
    """Reactive replies: the user's message answered from their activity and the how-tos."""

    async def reply(self, request: ReplyRequest) -> str:
        context = await self.source.context(request.user_id)
        how_tos = self.source.how_tos
        # Not the user's message: asked about a button that does not exist, the model must
        # not be able to confirm it by quoting the question back.
        grounding = [*self.vocabulary, *context.labels]
        for how_to in how_tos:
            grounding += [how_to.offer, *how_to.steps]
        answer = await _ask(
            self.model,
            reply_messages(context, request.text, how_tos),
            UIGuard(grounding),
            fallback=lambda: honest_reply(context, self.source.how_to(context.last_trigger)),
            no_model_reason=self.no_model_reason,
        )
        _log("proactive reply", answer, f"user={request.user_id} sender={request.sender_id}")
        return answer.text


async def _nobody(sender_id: str) -> Optional[str]:
    return None


class GroundedAssistant:
    """The follow-up writer and the reply answerer over one model client, for one server."""

    def __init__(
        self,
        engine: ProactiveEngine,
        settings: LLMSettings,
        *,
        model: Optional[ChatModel] = None,
        users_of: Callable[[str], Awaitable[Optional[str]]] = _nobody,
        user_id_key: str = "userId",
        trust_metadata: bool = True,
        read: Optional[EngineReader] = None,
        summaries: bool = True,
    ) -> None:
        """``read``: how to read a user's state (see ``GroundingSource``); ``summaries=False``
        when the engine given is not the one ingesting (several replicas: none are made)."""
        config = engine.config.chat
        self.settings = settings
        self.model = model if model is not None else build_model(settings)
        self.summaries: Optional[SessionSummaries] = None
        if config.summary.enabled and not summaries:
            logger.warning("session summaries are enabled but offers are shared by several replicas: none are made")
        elif config.summary.enabled and self.model is not None:
            self.summaries = SessionSummaries(engine.activity, self.model, config.summary, clock=engine.clock)
            engine.add_ingest_listener(self._on_ingest)
        elif config.summary.enabled:
            logger.info("session summaries are enabled but no LLM is configured: none are made")
        self.source = GroundingSource(engine, activity_lines=config.activity_lines, summaries=self.summaries, read=read)
        reason = settings.why_not if self.model is None else ""
        self.follow_up = GroundedFollowUpWriter(self.source, self.model, vocabulary=config.ui_vocabulary, no_model_reason=reason)
        self.answerer = GroundedAnswerer(self.source, self.model, vocabulary=config.ui_vocabulary, no_model_reason=reason)
        self._users_of = users_of
        self._user_id_key = user_id_key
        self._trust_metadata = trust_metadata

    async def reply(self, sender_id: str, text: str, metadata: Optional[Mapping[str, Any]] = None) -> str:
        """Answer a chat message for the chat session's (verified) user; with identity checks
        off, ``customData.userId`` is taken at its word."""
        try:
            user_id = await self._users_of(sender_id)
        except ProactiveError as e:  # the shared chat sessions are away: answer without the user's activity
            logger.warning("reply for %s without its user: %s", sender_id, e)
            user_id = None
        if user_id is None and self._trust_metadata:
            claimed = (metadata or {}).get(self._user_id_key)
            user_id = claimed if isinstance(claimed, str) and claimed else None
        return await self.answerer.reply(ReplyRequest(sender_id, text, user_id))

    def _on_ingest(self, changed: Set[Tuple[str, str]]) -> None:
        if self.summaries is not None:
            self.summaries.on_activity(session_id for _, session_id in changed)

    async def aclose(self) -> None:
        if self.summaries is not None:
            summaries, self.summaries = self.summaries, None
            await summaries.aclose()
        if self.model is not None:
            await self.model.aclose()


_installed: Optional[GroundedAssistant] = None


def install(assistant: Optional[GroundedAssistant]) -> None:
    """Make ``assistant`` the one in-process actions use (None: there is none)."""
    global _installed
    _installed = assistant


def installed() -> Optional[GroundedAssistant]:
    return _installed


async def _ask(
    model: Optional[ChatModel],
    messages: Sequence[ChatMessage],
    guard: UIGuard,
    *,
    fallback: Callable[[], str],
    no_model_reason: str,
) -> Answer:
    if model is None:
        return Answer(fallback(), "fallback", f"no LLM configured ({no_model_reason or 'none'})")
    try:
        text = await model.complete(messages)
    except LLMTimeout as e:
        return Answer(fallback(), "fallback", f"timeout: {e}")
    except LLMError as e:
        return Answer(fallback(), "fallback", f"error: {e}")
    except Exception as e:  # a half-compatible server: the user still gets an answer
        logger.exception("the LLM call failed unexpectedly")
        return Answer(fallback(), "fallback", f"error: unexpected {type(e).__name__}: {e}")
    verdict = guard.check(text)
    if not verdict.ok:
        return Answer(fallback(), "fallback", verdict.reason)
    return Answer(one_bubble(text), "llm")


def one_bubble(text: str) -> str:
    """Rasa's socket.io channel sends each blank-line-separated part as its own message."""
    return _BLANK_LINES.sub("\n", text.strip())


def _log(what: str, answer: Answer, where: str) -> None:
    if answer.source == "llm":
        logger.info("%s written by the LLM: %s", what, where)
    else:
        # Running without a model is a deployment choice; the other reasons are incidents.
        level = logging.INFO if answer.reason.startswith("no LLM") else logging.WARNING
        logger.log(level, "%s uses the deterministic answer: reason=%s; %s", what, answer.reason, where)


def _how_to(config: ProactiveConfig, trigger_id: str) -> Optional[HowTo]:
    trigger = config.trigger(trigger_id)
    if trigger is None or not trigger.how_to:
        return None
    offer = trigger.body if trigger.body else (trigger.description if isinstance(trigger, BuiltinTriggerConfig) else trigger.id)
    return HowTo(trigger.id, offer, trigger.how_to)

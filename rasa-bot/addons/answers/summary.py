"""An optional rolling summary per session, for the prompt (``proactive.yml: chat.summary``).

Every ``every_actions`` new actions in a session, one LLM call folds them into that
session's summary so far. Bounded on purpose, where autoplay-sdk's ``AsyncSessionSummarizer``
is not (one worker task and queue per session, history restored and regrown on every LLM
failure): here there is no queue, at most ``max_concurrent`` calls run at once (a session
that finds no free slot is picked up on its next events), a failed call is not retried
until ``every_actions`` more actions arrive, and at most ``max_sessions`` summaries are kept.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional

from addons.stores.protocols import ActivityStore
from addons.bounded import BoundedMap
from addons.config import SummaryConfig
from addons.answers.llm import ChatModel, LLMError, system_and_user
from addons.answers.prompts import activity_lines

logger = logging.getLogger(__name__)

SUMMARY_SYSTEM = """\
You keep a running summary of one user's session in a web app, for a help assistant.
Write at most 3 sentences: the pages they used, what they did, and the goal you can infer.
Use only the actions given; invent nothing."""


@dataclass(frozen=True)
class _Summary:
    text: str
    upto_index: int  # the newest action (activity-store index) the summary covers


class SessionSummaries:
    def __init__(self, activity: ActivityStore, model: ChatModel, settings: SummaryConfig, *, clock: Callable[[], float]) -> None:
        self._activity = activity
        self._model = model
        self._settings = settings
        self._clock = clock
        self._next_attempt: BoundedMap[str, int] = BoundedMap(settings.max_sessions)  # after a failure: no retry before this index
        self._summaries: BoundedMap[str, _Summary] = BoundedMap(
            settings.max_sessions, on_evict=lambda session_id, _: self._next_attempt.pop(session_id, None)
        )
        self._tasks: Dict[str, "asyncio.Task[None]"] = {}

    def get(self, session_id: str) -> Optional[str]:
        summary = self._summaries.get(session_id)
        return summary.text if summary else None

    def on_activity(self, session_ids: Iterable[str]) -> None:
        """Called on ingest (inside the event loop): start summaries that are due."""
        for session_id in session_ids:
            if session_id in self._tasks or len(self._tasks) >= self._settings.max_concurrent:
                continue
            actions = self._activity.recent_actions(session_id)
            if not actions:
                continue
            covered = self._summaries[session_id].upto_index if session_id in self._summaries else 0
            newest = max(a.index for a in actions)
            due = newest - max(covered, self._next_attempt.get(session_id, 0)) >= self._settings.every_actions
            if due:
                task = asyncio.get_running_loop().create_task(self._summarise(session_id, covered, newest))
                self._tasks[session_id] = task
                task.add_done_callback(functools.partial(self._finished, session_id))

    def _finished(self, session_id: str, _task: "asyncio.Task[None]") -> None:
        self._tasks.pop(session_id, None)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _summarise(self, session_id: str, covered: int, newest: int) -> None:
        actions = [a for a in self._activity.recent_actions(session_id) if covered < a.index <= newest]
        lines = "\n".join(f"- {line}" for line in activity_lines(actions, now=self._clock(), limit=len(actions)))
        previous = self.get(session_id) or "(none yet)"
        prompt = f"Summary so far: {previous}\n\nNew actions (oldest first):\n{lines}\n\nThe updated summary:"
        try:
            text = await self._model.complete(system_and_user(SUMMARY_SYSTEM, prompt))
        except Exception as e:  # LLMError, or a half-compatible server's malformed answer
            self._next_attempt.touch(session_id, newest)
            if isinstance(e, LLMError):
                logger.warning("session summary for %s failed, kept the previous one: %s", session_id, e)
            else:
                logger.exception("session summary for %s failed unexpectedly, kept the previous one", session_id)
            return
        self._next_attempt.pop(session_id, None)
        self._summaries.touch(session_id, _Summary(" ".join(text.split()), newest))
        logger.info("session summary updated: session=%s actions<=%d", session_id, newest)

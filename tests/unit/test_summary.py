"""The optional rolling session summary: bounded, off without a model, and in the prompt."""

import asyncio
import dataclasses
import logging

from addons.config import LLMConfig, SummaryConfig
from addons.offers.engine import ProactiveEngine
from addons.answers.grounded import GroundedAssistant
from addons.answers.llm import resolve_llm
from fake_llm import Reply


def summarising_engine(config, ph, **summary):
    settings = SummaryConfig(enabled=True, **{"every_actions": 3, **summary})
    return ProactiveEngine(dataclasses.replace(config, chat=dataclasses.replace(config.chat, summary=settings)), clock=lambda: ph.T0)


def llm(fake):
    return resolve_llm(LLMConfig(model="fake-model", base_url=fake.base_url if fake else None, timeout_s=2), {})


def clicks(ph, n, *, start, session="sess-1", user="user-1"):
    return ph.batch([ph.event(ts=ph.T0 - 60 + start + i, text=f"Row {start + i}", session=session, user=user) for i in range(n)],
                    received_at=ph.T0)


async def settle(assistant):
    for _ in range(200):
        if not assistant.summaries._tasks:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("summary tasks did not finish")


async def test_every_n_actions_fold_into_the_summary_that_the_prompt_then_shows(config, ph, mono, fake_llm):
    engine = summarising_engine(config, ph)
    assistant = GroundedAssistant(engine, llm(fake_llm))
    try:
        fake_llm.script(Reply("They opened rows 0 to 3 on /projects."))
        engine.ingest(clicks(ph, 2, start=0), now=ph.T0)
        await settle(assistant)
        assert fake_llm.requests == []  # 2 < 3 new actions: not due yet
        engine.ingest(clicks(ph, 2, start=2), now=ph.T0)
        await settle(assistant)
        assert len(fake_llm.requests) == 1
        assert "clicked 'Row 0'" in fake_llm.prompt() and "clicked 'Row 3'" in fake_llm.prompt()
        assert assistant.summaries.get("sess-1") == "They opened rows 0 to 3 on /projects."

        fake_llm.script(Reply("Rolling: rows 0 to 6."))
        engine.ingest(clicks(ph, 3, start=4), now=ph.T0)
        await settle(assistant)
        assert "Summary so far: They opened rows 0 to 3 on /projects." in fake_llm.prompt()
        assert "Row 3" not in fake_llm.prompt()  # only the actions the summary does not cover yet

        fake_llm.script(Reply("Fine."))
        await assistant.reply("chat-1", "what now?", {"userId": "user-1"})
        assert "Summary of their session so far: Rolling: rows 0 to 6." in fake_llm.prompt()
    finally:
        await assistant.aclose()


async def test_a_failed_summary_waits_for_more_actions_before_trying_again(config, ph, mono, fake_llm, caplog):
    engine = summarising_engine(config, ph)
    assistant = GroundedAssistant(engine, llm(fake_llm))
    try:
        fake_llm.script(Reply(status=500))
        engine.ingest(clicks(ph, 3, start=0), now=ph.T0)
        await settle(assistant)
        engine.ingest(clicks(ph, 1, start=3), now=ph.T0)
        await settle(assistant)
        assert len(fake_llm.requests) == 1
        assert assistant.summaries.get("sess-1") is None
        assert "session summary for sess-1 failed, kept the previous one" in caplog.text
        fake_llm.script(Reply("Recovered."))
        engine.ingest(clicks(ph, 2, start=4), now=ph.T0)
        await settle(assistant)
        assert assistant.summaries.get("sess-1") == "Recovered."
    finally:
        await assistant.aclose()


async def test_summaries_are_capped_in_sessions_and_in_concurrent_calls(config, ph, mono, fake_llm):
    engine = summarising_engine(config, ph, max_sessions=1, max_concurrent=1)
    assistant = GroundedAssistant(engine, llm(fake_llm))
    try:
        fake_llm.script(Reply("Summary.", delay_s=0.2))
        engine.ingest(clicks(ph, 3, start=0, session="s-a", user="u-a"), now=ph.T0)
        engine.ingest(clicks(ph, 3, start=0, session="s-b", user="u-b"), now=ph.T0)  # no free slot: skipped
        await settle(assistant)
        assert len(fake_llm.requests) == 1
        engine.ingest(clicks(ph, 1, start=3, session="s-b", user="u-b"), now=ph.T0)  # picked up on its next events
        await settle(assistant)
        assert assistant.summaries.get("s-b") == "Summary."
        assert assistant.summaries.get("s-a") is None  # max_sessions=1: the older one went
    finally:
        await assistant.aclose()


async def test_no_summary_is_made_without_an_llm(config, ph, mono, caplog):
    caplog.set_level(logging.INFO, logger="addons")
    assistant = GroundedAssistant(summarising_engine(config, ph), llm(None))
    assert assistant.summaries is None
    assert "session summaries are enabled but no LLM is configured" in caplog.text


def test_summaries_are_off_by_default(config):
    assert config.chat.summary.enabled is False

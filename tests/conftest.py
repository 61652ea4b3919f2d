"""Fixtures shared by the unit and integration suites."""

from typing import Iterator

import pytest

from fake_llm import FakeLLM, Reply


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """The loopback OpenAI-compatible server, reset to one default reply for this test."""
    return fake_llm_server.script(Reply())

"""The chat model behind follow-ups and replies: any OpenAI-compatible server.

``resolve_llm`` merges ``proactive.yml: llm`` with the environment (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``, ``OPENAI_MODEL`` win over the file) and says whether a model is
configured at all. ``OpenAIChatModel`` wraps ``openai.AsyncOpenAI`` with retries off and
one overall deadline, so the configured timeout is the longest a user waits; its failures
are ``LLMTimeout`` or ``LLMError``, never the client's own exception zoo.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Protocol, Sequence

import openai

from addons.config import LLMConfig

logger = logging.getLogger(__name__)

# A local OpenAI-compatible server (Ollama, vLLM, llama.cpp) often needs no key, but the
# client refuses to start without one.
KEY_NOT_NEEDED = "not-needed"

ENV_API_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_MODEL = "OPENAI_MODEL"

ChatMessage = Dict[str, str]


class LLMError(RuntimeError):
    """The model server answered with an error, an empty answer, or could not be reached."""


class LLMTimeout(LLMError):
    """No complete answer within the configured ``llm.timeout_s``."""


@dataclass(frozen=True)
class LLMSettings:
    """What the client is built from, once the environment has been applied."""

    model: str
    api_key: Optional[str]
    base_url: Optional[str]
    timeout_s: float
    temperature: float
    max_tokens: int
    configured: bool
    why_not: str = ""

    def describe(self) -> str:
        if not self.configured:
            return f"none ({self.why_not})"
        return f"model={self.model} base_url={self.base_url or 'https://api.openai.com/v1'} timeout={self.timeout_s:g}s"


def resolve_llm(config: LLMConfig, environ: Mapping[str, str]) -> LLMSettings:
    """The file's settings with environment overrides; configured = a key or a base URL."""
    api_key = environ.get(ENV_API_KEY) or config.api_key
    base_url = environ.get(ENV_BASE_URL) or config.base_url
    model = environ.get(ENV_MODEL) or config.model
    if not config.enabled:
        why_not = "llm.enabled is false"
    elif not api_key and not base_url:
        why_not = f"no {ENV_API_KEY}, {ENV_BASE_URL}, llm.api_key or llm.base_url"
    else:
        why_not = ""
    return LLMSettings(
        model=model,
        api_key=api_key,
        base_url=base_url,
        timeout_s=config.timeout_s,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        configured=not why_not,
        why_not=why_not,
    )


class ChatModel(Protocol):
    """One chat completion: messages in, the assistant's text out."""

    async def complete(self, messages: Sequence[ChatMessage]) -> str:
        ...

    async def aclose(self) -> None:
        ...


class OpenAIChatModel:
    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key or KEY_NOT_NEEDED,
            base_url=settings.base_url,
            timeout=settings.timeout_s,
            max_retries=0,  # a retry would silently double the time the user waits
        )
        # The first touch imports the client's resource and type modules (~0.4 s of blocking
        # work): pay it at start-up, not on a user's first follow-up while the loop serves others.
        self._completions = self._client.chat.completions

    async def complete(self, messages: Sequence[ChatMessage]) -> str:
        s = self.settings
        try:
            # The client's timeout is per network phase; this bounds the whole call.
            completion = await asyncio.wait_for(
                self._completions.create(
                    model=s.model,
                    messages=list(messages),  # type: ignore[arg-type]
                    temperature=s.temperature,
                    max_tokens=s.max_tokens,
                ),
                timeout=s.timeout_s,
            )
        except (asyncio.TimeoutError, openai.APITimeoutError):
            raise LLMTimeout(f"no answer from {s.model} within {s.timeout_s:g} s") from None
        except openai.APIStatusError as e:
            raise LLMError(f"{s.model} answered HTTP {e.status_code}: {_short(e.message)}") from None
        except openai.OpenAIError as e:
            raise LLMError(f"{s.model} failed: {type(e).__name__}: {_short(str(e))}") from None
        choices = completion.choices or []
        text = (choices[0].message.content or "").strip() if choices else ""
        if not text:
            raise LLMError(f"{s.model} returned an empty answer")
        return text

    async def aclose(self) -> None:
        await self._client.close()


def build_model(settings: LLMSettings) -> Optional[ChatModel]:
    return OpenAIChatModel(settings) if settings.configured else None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def system_and_user(system: str, user: str) -> List[ChatMessage]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]

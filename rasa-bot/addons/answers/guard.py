"""The hallucination guard: an answer may name only UI that is known to exist.

A chat answer points at UI by quoting or bolding its name ("Bulk edit", **Apply to 3**,
`Edit`). Every such name must occur, as whole words and ignoring case, in the grounding
text: the trigger's how-to, the app's UI vocabulary from ``proactive.yml``, the labels of
what the user really clicked, and the user's own words. One unknown name rejects the whole
answer; the caller then sends ``render_how_to`` (or another deterministic answer) instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

# Quoted or emphasised spans: **bold**, __bold__, "double", “curly”, ‘curly’, 'single', `code`.
# Straight single quotes count only outside words, so "don't" and "users'" are not quotes.
_LABEL_PATTERNS = (
    re.compile(r"\*\*(.{1,80}?)\*\*", re.DOTALL),
    re.compile(r"(?<!\w)__(.{1,80}?)__(?!\w)", re.DOTALL),
    re.compile(r'"([^"\n]{1,80})"'),
    re.compile(r"“([^”\n]{1,80})”"),
    re.compile(r"‘([^\n]{1,80}?)’(?!\w)"),
    re.compile(r"(?<!\w)'([^'\n]{1,80}?)'(?!\w)"),
    re.compile(r"`([^`\n]{1,80})`"),
)
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "`": "'", "\u00a0": " "})
_EDGE = " \t\n\"'*_.,:;!?()[]"
_NUMBER = re.compile(r"(?<!\w)\d+(?!\w)")


def quoted_labels(text: str) -> Tuple[str, ...]:
    """UI-name candidates in an answer: every quoted or emphasised span, in order, once each."""
    spans = sorted((m.start(), m.group(1).strip(_EDGE)) for p in _LABEL_PATTERNS for m in p.finditer(text))
    found: List[str] = []
    for _, label in spans:
        if label and label not in found:
            found.append(label)
    return tuple(found)


def normalise(text: str) -> str:
    """Case, curly quotes and whitespace do not make a different UI name."""
    return " ".join(text.translate(_QUOTES).casefold().split())


@dataclass(frozen=True)
class GuardVerdict:
    ok: bool
    offending: Tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "ok" if self.ok else "guard violation: unknown UI " + ", ".join(f'"{label}"' for label in self.offending)


class UIGuard:
    """Checks answers against a grounding text; build one per answer (it is cheap)."""

    def __init__(self, grounding: Iterable[str]) -> None:
        self._corpus = "\n".join(normalise(t) for t in grounding if t)

    def known(self, label: str) -> bool:
        label = normalise(label.strip(_EDGE))
        if not label:
            return True
        # "Apply to 3" is the how-to's "Apply to N" with the number filled in.
        return any(self._contains(candidate) for candidate in {label, _NUMBER.sub("n", label)})

    def check(self, answer: str) -> GuardVerdict:
        offending = tuple(label for label in quoted_labels(answer) if not self.known(label))
        return GuardVerdict(ok=not offending, offending=offending)

    def _contains(self, label: str) -> bool:
        return re.search(r"(?<!\w)" + re.escape(label) + r"(?!\w)", self._corpus) is not None


def render_how_to(steps: Sequence[str], *, first_name: Optional[str] = None) -> str:
    """The how-to as the follow-up bubble, word for word: what is sent when the model is not."""
    greeting = f"Sure, {first_name}! " if first_name else ""
    lines = [f"{greeting}Here's the faster way, step by step:"]
    lines += [f"{i}. {step}" for i, step in enumerate(steps, 1)]
    return "\n".join(lines)

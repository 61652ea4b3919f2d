"""Prompt assembly shared by the Open-chat follow-up and reactive replies.

Both paths show the model the same grounding: the user's first name when PostHog knows it,
their recent actions as readable lines, the rolling session summary when one exists, and
how-to text that is the only authority on what the UI contains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from autoplay_sdk.core.models import SlimAction

from addons.offers.ingest import verb_of
from addons.urls import action_path
from addons.answers.llm import ChatMessage, system_and_user


@dataclass(frozen=True)
class HowTo:
    """A trigger's authoritative steps, with the offer text they answer."""

    trigger_id: str
    offer: str
    steps: Tuple[str, ...]


@dataclass(frozen=True)
class ActivityLine:
    """Consecutive identical actions, collapsed: "clicked 'Save changes'" on /projects, 3 times."""

    what: str
    page: str
    label: str
    count: int
    seconds_ago: float

    @property
    def phrase(self) -> str:
        where = f" on {self.page}" if self.page and self.page not in self.what else ""
        times = f" ({self.count} times)" if self.count > 1 else ""
        return f"{self.what}{where}{times}"

    def __str__(self) -> str:
        return f"{_ago(self.seconds_ago)}: {self.phrase}"


@dataclass(frozen=True)
class UserContext:
    """What the assistant may know about the person it answers."""

    user_id: Optional[str] = None
    first_name: Optional[str] = None
    activity: Tuple[ActivityLine, ...] = ()  # oldest first
    summary: Optional[str] = None
    last_trigger: Optional[str] = None
    repeats: Tuple[Tuple[str, int], ...] = ()  # ("clicked 'Save changes'", 3): done more than once, most first

    @property
    def labels(self) -> Tuple[str, ...]:
        """Names of elements the user really clicked or pages they saw: real UI, for the guard."""
        return tuple(line.label for line in self.activity)


SYSTEM_PROMPT = """\
You are the help assistant inside a web app, answering in a small chat widget.
Ground everything you say in the material the user message gives you: the user's recent \
activity in the app and the how-to steps.
Rules:
- Name a button, menu, field or label only if it appears in the how-to steps or in the \
activity, spelled exactly as there, in double quotes.
- Never invent UI, features, shortcuts, settings or numbers. If the material does not \
answer the question, say so in one sentence and ask what they are trying to do.
- Be brief and warm: at most 120 words. Use the first name at most once, and only if given.
- Plain text. A numbered list is fine for steps. No bold, no headings."""

FOLLOW_UP_TASK = """\
Rewrite the how-to steps for this user in a friendly tone. Open with one short sentence \
that refers to what they just did (from the activity). Keep every step, in order, as a \
numbered list; keep UI names exactly as written, in double quotes; add no step and no UI."""

REPLY_TASK = """\
Answer the user's message using only the material above. If a how-to fits, walk them \
through it; otherwise say what you can see from their activity."""


def activity_lines(actions: Sequence[SlimAction], *, now: float, limit: int) -> Tuple[ActivityLine, ...]:
    """The newest ``limit`` lines, oldest first; repeats in a row become one line with a count."""
    lines: List[ActivityLine] = []
    for action in sorted(actions, key=lambda a: a.timestamp_start):
        what = _what(action)
        page = action_path(action) or action.raw_url or action.canonical_url
        ago = max(now - action.timestamp_start, 0.0)
        if lines and lines[-1].what == what and lines[-1].page == page:
            previous = lines[-1]
            lines[-1] = ActivityLine(what, page, previous.label, previous.count + 1, ago)
        else:
            lines.append(ActivityLine(what, page, action.title, 1, ago))
    return tuple(lines[-limit:])


def follow_up_messages(context: UserContext, how_to: HowTo) -> List[ChatMessage]:
    """The synthetic "yes, walk me through it" turn after the offer."""
    parts = [
        f'The user was offered: "{how_to.offer}"',
        'They opened the chat to accept, as if saying: "Yes, walk me through it."',
        *_about_user(context),
        _steps_block("How-to steps (the only source of truth about the UI)", how_to.steps),
        FOLLOW_UP_TASK,
    ]
    return system_and_user(SYSTEM_PROMPT, "\n\n".join(parts))


def reply_messages(context: UserContext, message: str, how_tos: Sequence[HowTo]) -> List[ChatMessage]:
    """A reactive answer to what the user typed."""
    parts = list(_about_user(context))
    for how_to in how_tos:
        offered = " (the copilot offered this to them just now)" if how_to.trigger_id == context.last_trigger else ""
        parts.append(_steps_block(f'How-to for "{how_to.offer}"{offered}', how_to.steps))
    if not how_tos:
        parts.append("How-to steps: none are available.")
    parts += [f'The user\'s message: "{message}"', REPLY_TASK]
    return system_and_user(SYSTEM_PROMPT, "\n\n".join(parts))


def repeated_actions(actions: Sequence[SlimAction], *, limit: int = 3) -> Tuple[Tuple[str, int], ...]:
    """What the user did more than once in the session (same verb, same element), most first:
    interleaved steps (Edit, Priority, Save changes, three times) hide a repeat from the
    line-by-line activity, and the repeat is usually what they want help with."""
    counts: Dict[str, int] = {}
    for action in actions:
        if action.type != "pageview":
            phrase = f"{verb_of(action.type)} '{action.title}'"
            counts[phrase] = counts.get(phrase, 0) + 1
    repeats = sorted(((p, n) for p, n in counts.items() if n > 1), key=lambda item: -item[1])
    return tuple(repeats[:limit])


def honest_reply(context: UserContext, how_to: Optional[HowTo]) -> str:
    """A reply with no model: only what the activity shows, plus the how-to of a live offer."""
    if not context.activity:
        return (
            "I can only answer from what I see you doing in the app, and I don't see any "
            "activity from you yet. Tell me what you're trying to do and I'll point you to the how-to if there is one."
        )
    seen = "; ".join(line.phrase for line in reversed(context.activity[-3:]))
    text = f"Here's what I can see you did most recently: {seen}."
    if context.repeats:
        text += " Along the way you " + " and ".join(f"{phrase} {n} times" for phrase, n in context.repeats[:2]) + "."
    if how_to is not None:
        steps = "\n".join(f"{i}. {step}" for i, step in enumerate(how_to.steps, 1))
        text += f"\nIf you're after the faster way I offered, here it is:\n{steps}"  # one bubble: no blank line
    return text


def _about_user(context: UserContext) -> List[str]:
    name = context.first_name or "unknown (do not use a name)"
    parts = [f"The user's first name: {name}"]
    if context.activity:
        parts.append("What they did recently (oldest first):\n" + "\n".join(f"- {line}" for line in context.activity))
    else:
        parts.append("What they did recently: nothing is recorded.")
    if context.repeats:
        parts.append("What they did more than once: " + "; ".join(f"{p} ({n} times)" for p, n in context.repeats))
    if context.summary:
        parts.append(f"Summary of their session so far: {context.summary}")
    return parts


def _steps_block(title: str, steps: Sequence[str]) -> str:
    return f"{title}:\n" + "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1))


def _what(action: SlimAction) -> str:
    description = action.description or action.title
    return description[5:] if description.startswith("User ") else description



def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"

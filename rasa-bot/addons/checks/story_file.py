"""Proactive test stories: the YAML format, and its reader.

A story says what a user does and whether an offer should follow, the way Rasa's test stories
say what a user types and what the bot should answer. Files live in ``proactive_tests/*.yml``::

    stories:
      - story: three saves fire
        user: u-1                  # optional, "user-1" by default; `session:` "session-1"
        steps:                     # `at` and `arrives`: seconds from the story's start
          - pageview: /projects    # `at` defaults to the time the previous step reached the server
          - click: Save changes    # on the latest pageview's path, unless `page:` says
            at: 10
          - click: Save changes
            at: 20
          - click: Save changes
            at: 30
            timestamp: epoch       # sent as "1779188792.919"; `iso` (the default) as "2026-…Z"
        expect:
          offer: bulk_edit_opportunity   # exactly one offer, of this trigger
          tours: [bulk_edit_tour]        # optional: the tours it offered, in order

      - story: two saves do not
        steps: [...]
        expect:
          # No offer, and /debug gives this reason (exactly) for the first trigger of
          # proactive.yml; `no_offer: {trigger: <id>, reason: <text>}` names another trigger.
          no_offer: "2 of 3 'save changes' actions on /projects within the last 120 s"

A file may name its own configuration, ``config: kinds.proactive.yml`` (relative to the
file); otherwise its stories play against the ``proactive.yml`` given to the runner.

Steps, played in the order written on one simulated clock:

* ``pageview: <path>``, ``click: <label>``, ``submit: <form name>``: a PostHog event, sent as
  one capture request when the step happens. ``at`` (when it happened), ``arrives`` (when it
  reaches the server, for a late request; ``at`` by default), ``timestamp: iso | epoch`` (how
  the event's time is written); ``click`` and ``submit`` take ``page: <path>``.
* ``batch: [<event step>, ...]``: several events in one request, in the order listed (out of
  order if their ``at`` are; an item's ``at`` defaults to the one before it); it arrives with
  its latest event, or at ``arrives``.
* ``chat: <message>``: the user writes in the chat. ``tour_start: <tour id>``, ``tour_end:``
  (optionally ``tour_end: <tour id>``, checked): the user runs a tour. Each takes ``at``.
* ``wait: <seconds>``: time passes; the periodic tick runs as the driver would.

A step may not reach the server before the previous one: an event that happened earlier but
comes later says so with ``arrives``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Tuple, Union

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

DEFAULT_USER = "user-1"
DEFAULT_SESSION = "session-1"
EVENT_KINDS = ("pageview", "click", "submit")
TIMESTAMP_FORMATS = ("iso", "epoch")
_OTHER_KINDS = ("batch", "chat", "tour_start", "tour_end", "wait")
_STEP_OPTIONS: Dict[str, FrozenSet[str]] = {
    "pageview": frozenset({"at", "arrives", "timestamp"}),
    "click": frozenset({"at", "arrives", "timestamp", "page"}),
    "submit": frozenset({"at", "arrives", "timestamp", "page"}),
    "batch": frozenset({"arrives"}),
    "chat": frozenset({"at"}),
    "tour_start": frozenset({"at"}),
    "tour_end": frozenset({"at"}),
    "wait": frozenset(),
}
_STORY_KEYS = frozenset({"story", "user", "session", "steps", "expect"})
_EXPECT_KEYS = frozenset({"offer", "tours", "no_offer"})


class StoryError(ValueError):
    """A story that cannot be played; the message starts with the file and line."""


class StoryFileError(StoryError):
    """A story file that cannot be read or does not follow the story format."""


@dataclass(frozen=True)
class StoryEvent:
    """One PostHog event of a story."""

    kind: str  # one of EVENT_KINDS
    target: str  # the path of a pageview, the label of a click, the name of a submitted form
    page: str  # the path it happened on
    at: float
    timestamp_format: str  # one of TIMESTAMP_FORMATS
    line: int


@dataclass(frozen=True)
class SendEvents:
    """One capture request: a single event step or a ``batch``."""

    events: Tuple[StoryEvent, ...]
    at: float  # when it reaches the server
    line: int


@dataclass(frozen=True)
class ChatMessage:
    text: str
    at: float
    line: int


@dataclass(frozen=True)
class TourStart:
    tour_id: str
    at: float
    line: int


@dataclass(frozen=True)
class TourEnd:
    tour_id: Optional[str]  # checked against the tour that ends, when given
    at: float
    line: int


@dataclass(frozen=True)
class Wait:
    at: float  # when the wait ends
    line: int


Step = Union[SendEvents, ChatMessage, TourStart, TourEnd, Wait]


@dataclass(frozen=True)
class ExpectOffer:
    trigger_id: str
    tours: Optional[Tuple[str, ...]]  # None: not checked


@dataclass(frozen=True)
class ExpectNoOffer:
    trigger_id: Optional[str]  # None: the first trigger of proactive.yml
    reason: str


Expectation = Union[ExpectOffer, ExpectNoOffer]


@dataclass(frozen=True)
class Story:
    name: str
    path: Path
    line: int
    user_id: str
    session_id: str
    steps: Tuple[Step, ...]
    expect: Expectation
    config: Optional[Path] = None  # the file's own proactive.yml, if it names one

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


def load_story_file(path: Path) -> Tuple[Story, ...]:
    """Every story of one file, or ``StoryFileError`` naming the first thing wrong in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise StoryFileError(f"{path}: cannot read the story file: {e}") from None
    try:
        root = YAML(typ="rt").load(text)
    except MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark is not None else 1
        raise StoryFileError(f"{path}:{line}: not valid YAML: {e.problem or e}") from None
    except YAMLError as e:
        raise StoryFileError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(root, dict) or "stories" not in root or not set(root) <= {"stories", "config"}:
        raise StoryFileError(f"{path}:1: expected `stories:` (a list of stories) and, optionally, `config:`")
    stories = root["stories"]
    if not isinstance(stories, list) or not stories:
        raise StoryFileError(f"{path}:{_line(root, 'stories')}: `stories:` must be a non-empty list")
    config = root.get("config")
    if config is not None and (not isinstance(config, str) or not config.strip()):
        raise StoryFileError(f"{path}:{_line(root, 'config')}: `config:` must be the path of a proactive.yml")
    own_config = (path.parent / config.strip()) if isinstance(config, str) else None
    return tuple(replace(_StoryReader(path, stories, i).read(), config=own_config) for i in range(len(stories)))


class _StoryReader:
    """Reads one story, following its clock and latest page to fill in what steps leave out."""

    def __init__(self, path: Path, stories: Any, index: int) -> None:
        self.path = path
        self.raw = stories[index]
        self.line = _item_line(stories, index)
        self.name = f"#{index + 1}"
        self.clock = 0.0  # when the previous step reached the server
        self.page: Optional[str] = None  # the latest pageview's path, in the order written

    def read(self) -> Story:
        if not isinstance(self.raw, dict) or not isinstance(self.raw.get("story"), str) or not self.raw["story"].strip():
            raise self._error(self.line, "each story is a mapping that starts with `story: <name>`")
        self.name = self.raw["story"].strip()
        self._only(self.raw, _STORY_KEYS, self.line, "a story")
        steps = self.raw.get("steps")
        if not isinstance(steps, list) or not steps:
            raise self._error(self.line, "`steps:` must be a non-empty list")
        return Story(
            name=self.name,
            path=self.path,
            line=self.line,
            user_id=self._identifier("user", DEFAULT_USER),
            session_id=self._identifier("session", DEFAULT_SESSION),
            steps=tuple(self._step(steps[i], _item_line(steps, i)) for i in range(len(steps))),
            expect=self._expectation(),
        )

    # -- steps ----------------------------------------------------------------------------------

    def _step(self, raw: Any, line: int) -> Step:
        kind = self._kind(raw, line, EVENT_KINDS + _OTHER_KINDS)
        if kind in EVENT_KINDS:
            event = self._event(raw, line, kind, default_at=self.clock)
            return self._arrival(SendEvents((event,), self._time(raw, "arrives", line, event.at), line), after=event.at)
        if kind == "batch":
            return self._batch(raw, line)
        if kind == "wait":
            seconds = self._time(raw, "wait", line, None)
            if seconds == 0:
                raise self._error(line, "`wait:` takes a positive number of seconds")
            self.clock += seconds
            return Wait(self.clock, line)
        at = self._time(raw, "at", line, self.clock)
        if at < self.clock:
            raise self._error(line, f"{kind} at {at:g} s comes before the previous step reached the server ({self.clock:g} s)")
        self.clock = at
        if kind == "chat":
            return ChatMessage(self._text(raw, kind, line), at, line)
        if kind == "tour_start":
            return TourStart(self._text(raw, kind, line), at, line)
        return TourEnd(None if raw[kind] is None else self._text(raw, kind, line), at, line)

    def _batch(self, raw: Any, line: int) -> SendEvents:
        items = raw["batch"]
        if not isinstance(items, list) or not items:
            raise self._error(line, "`batch:` must be a non-empty list of pageview, click or submit steps")
        events: List[StoryEvent] = []
        for i, item in enumerate(items):
            item_line = _item_line(items, i)
            kind = self._kind(item, item_line, EVENT_KINDS)
            if "arrives" in item:
                raise self._error(item_line, "events of a batch arrive together: put `arrives:` on the batch")
            events.append(self._event(item, item_line, kind, default_at=events[-1].at if events else self.clock))
        latest = max(e.at for e in events)
        return self._arrival(SendEvents(tuple(events), self._time(raw, "arrives", line, latest), line), after=latest)

    def _event(self, raw: Any, line: int, kind: str, *, default_at: float) -> StoryEvent:
        target = self._text(raw, kind, line)
        if kind == "pageview":
            page = self._path(target, line, kind)
            self.page = page
        elif "page" in raw:
            page = self._path(self._text(raw, "page", line), line, "page")
        elif self.page is None:
            raise self._error(line, f"this {kind} has no page: add a pageview step before it, or `page: <path>`")
        else:
            page = self.page
        timestamp_format = raw.get("timestamp", TIMESTAMP_FORMATS[0])
        if timestamp_format not in TIMESTAMP_FORMATS:
            raise self._error(line, f"`timestamp:` is one of {', '.join(TIMESTAMP_FORMATS)}, got {timestamp_format!r}")
        return StoryEvent(kind, target, page, self._time(raw, "at", line, default_at), timestamp_format, line)

    def _arrival(self, send: SendEvents, *, after: float) -> SendEvents:
        if send.at < after:
            raise self._error(send.line, f"arrives at {send.at:g} s, before it happens ({after:g} s)")
        if send.at < self.clock:
            raise self._error(
                send.line,
                f"reaches the server at {send.at:g} s, before the previous step did ({self.clock:g} s): "
                "steps are played in the order written; an event that comes late says so with `arrives:`",
            )
        self.clock = send.at
        return send

    # -- expect ---------------------------------------------------------------------------------

    def _expectation(self) -> Expectation:
        raw = self.raw.get("expect")
        line = _line(self.raw, "expect") if "expect" in self.raw else self.line
        if not isinstance(raw, dict) or ("offer" in raw) == ("no_offer" in raw):
            raise self._error(line, "`expect:` holds either `offer: <trigger id>` or `no_offer: <reason>`")
        self._only(raw, _EXPECT_KEYS, line, "expect")
        if "offer" in raw:
            tours = raw.get("tours")
            if tours is not None and (not isinstance(tours, list) or not all(isinstance(t, str) for t in tours)):
                raise self._error(line, f"`tours:` is a list of tour ids, got {tours!r}")
            return ExpectOffer(self._text(raw, "offer", line), None if tours is None else tuple(tours))
        if "tours" in raw:
            raise self._error(line, "`tours:` goes with `offer:`; no offer means no tours")
        no_offer = raw["no_offer"]
        if isinstance(no_offer, dict):
            if set(no_offer) != {"trigger", "reason"}:
                raise self._error(line, "`no_offer:` is a reason, or a mapping of `trigger:` and `reason:`")
            return ExpectNoOffer(self._text(no_offer, "trigger", line), self._text(no_offer, "reason", line))
        return ExpectNoOffer(None, self._text(raw, "no_offer", line))

    # -- values ---------------------------------------------------------------------------------

    def _kind(self, raw: Any, line: int, kinds: Tuple[str, ...]) -> str:
        found = [k for k in kinds if isinstance(raw, dict) and k in raw]
        if len(found) != 1:
            shown = dict(raw) if isinstance(raw, dict) else raw
            raise self._error(line, f"a step is a mapping with exactly one of {', '.join(kinds)}; got {shown!r}")
        self._only(raw, _STEP_OPTIONS[found[0]] | {found[0]}, line, f"a {found[0]} step")
        return found[0]

    def _only(self, raw: Any, allowed: FrozenSet[str], line: int, what: str) -> None:
        unknown = sorted(str(k) for k in raw if k not in allowed)
        if unknown:
            raise self._error(line, f"{what} does not take {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}")

    def _identifier(self, key: str, default: str) -> str:
        return self._text(self.raw, key, _line(self.raw, key)) if key in self.raw else default

    def _text(self, raw: Any, key: str, line: int) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self._error(line, f"`{key}:` must be a non-empty string, got {value!r}")
        return value.strip()

    def _path(self, value: str, line: int, key: str) -> str:
        if not value.startswith("/"):
            raise self._error(line, f"`{key}:` is a URL path starting with '/', got {value!r}")
        return value

    def _time(self, raw: Any, key: str, line: int, default: Optional[float]) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value < 0:
            raise self._error(line, f"`{key}:` takes seconds (a number of at least 0), got {value!r}")
        return float(value)

    def _error(self, line: int, message: str) -> StoryFileError:
        return StoryFileError(f"{self.path}:{line}: story {self.name!r}: {message}")


def _line(mapping: Any, key: str) -> int:
    """The 1-based line of a key of a ruamel mapping (of the mapping, for a merged-in key)."""
    try:
        return int(mapping.lc.key(key)[0]) + 1
    except (KeyError, TypeError):
        return int(mapping.lc.line) + 1


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _item_line(sequence: Any, index: int) -> int:
    """The 1-based line of an item of a ruamel sequence (of its first key, for a mapping)."""
    return int(sequence.lc.item(index)[0]) + 1

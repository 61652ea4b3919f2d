"""Plays proactive test stories (``addons.checks.story_file``) against a ``proactive.yml``.

In process and on a simulated clock: each story gets a fresh ``ProactiveEngine`` whose user
has a toast stream open; each step goes in as the real server would take it (posthog-js
shaped events through the capture route's ingest, chat and tour calls on the engine), and the
driver's periodic tick runs every ``driver.tick_seconds`` of story time and after each step.
autoplay-sdk's ``SessionState`` and the gate read ``time.monotonic``; for the length of a
story it follows the simulated clock instead (always restored after).

The verdict: which offers the stream received and, for ``no_offer``, the reason
``engine.debug`` gives for the named trigger.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import autoplay_sdk.agent_state.v2.session_state as sdk_session_state

import addons.offers.gate as gate_module
from addons.checks.story_file import (
    ChatMessage,
    ExpectNoOffer,
    ExpectOffer,
    Expectation,
    SendEvents,
    Step,
    Story,
    StoryError,
    StoryEvent,
    StoryFileError,
    TourEnd,
    TourStart,
    load_story_file,
)
from addons.config import ConfigError, ProactiveConfig, load_config
from addons.errors import ProactiveError
from addons.offers.delivery import DeliveryHub
from addons.offers.engine import ProactiveEngine
from addons.offers.ingest import normalise_batch, parse_capture_payload
from addons.offers.offer import Offer
from addons.stores import build_stores
from addons.stores.protocols import OfferStore

STORY_START = 1779188762.919  # epoch seconds of every story's 0 s: 2026-05-19T11:06:02.919Z
APP_URL = "https://app.example.com"  # the host app the simulated browser is on
STORY_SUFFIXES = (".yml", ".yaml")
_PATCHED_MODULES = (sdk_session_state, gate_module)  # the modules that read time.monotonic


class StoryConfigError(StoryError):
    """A story names a trigger or a tour that proactive.yml does not have."""


class StepRefused(Exception):
    """The engine or the ingest refused a step: the story cannot go on."""


@dataclass(frozen=True)
class DiffRow:
    """One compared fact of a story; ``expected`` None: shown for context, not compared."""

    name: str
    expected: Optional[str]
    actual: str

    @property
    def matches(self) -> bool:
        return self.expected is None or self.expected == self.actual


@dataclass(frozen=True)
class StoryResult:
    story: Story
    rows: Tuple[DiffRow, ...]
    refused_step: Optional[str] = None  # the engine refused a step: the story stopped there

    @property
    def passed(self) -> bool:
        return self.refused_step is None and all(row.matches for row in self.rows)

    def diff(self) -> List[str]:
        """Expected against actual, unified-diff style: ``-`` expected, ``+`` actual."""
        if self.passed:
            return []
        lines = ["--- expected", "+++ actual"]
        if self.refused_step is not None:
            lines += ["- every step accepted", f"+ {self.refused_step}"]
        for row in self.rows:
            if row.matches:
                lines.append(f"  {row.name}: {row.actual}")
            else:
                lines += [f"- {row.name}: {row.expected}", f"+ {row.name}: {row.actual}"]
        return lines


@dataclass(frozen=True)
class StoryRun:
    """The results of the stories that could be played, and why the others could not."""

    results: Tuple[StoryResult, ...]
    errors: Tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.passed for r in self.results)


def story_files(paths: Sequence[Path]) -> Tuple[List[Path], List[str]]:
    """The story files under ``paths`` (a directory gives its ``*.yml``), and what is missing."""
    files: List[Path] = []
    errors: List[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in STORY_SUFFIXES and p.is_file())
            if not found:
                errors.append(f"{path}: no story files (*.yml) in this directory")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}: no such story file or directory")
    return files, errors


def run_paths(paths: Sequence[Path], config: ProactiveConfig) -> StoryRun:
    """Read and play every story under ``paths``; a file that cannot be read is an error, not a stop."""
    files, errors = story_files(paths)
    stories: List[Story] = []
    for path in files:
        try:
            stories += load_story_file(path)
        except StoryFileError as e:
            errors.append(str(e))
    configs: Dict[Path, ProactiveConfig] = {}
    results = []
    for story in stories:
        try:
            results.append(run_story(story, _config_of(story, config, configs)))
        except StoryConfigError as e:
            errors.append(str(e))
    return StoryRun(tuple(results), tuple(errors))


def _config_of(story: Story, default: ProactiveConfig, loaded: Dict[Path, ProactiveConfig]) -> ProactiveConfig:
    """The story file's own proactive.yml (read once), else the runner's."""
    if story.config is None:
        return default
    if story.config not in loaded:
        try:
            loaded[story.config] = load_config(story.config)
        except ConfigError as e:
            raise StoryConfigError(f"{story.location}: story {story.name!r}: its config: {e}") from None
    return loaded[story.config]


def run_story(story: Story, config: ProactiveConfig) -> StoryResult:
    """Play one story on a fresh engine; ``StoryConfigError`` if it names what config lacks."""
    _check_names(story, config)
    clock = _SimulatedClock(STORY_START)
    with _monotonic_follows(clock):
        return _StoryPlayer(story, config, clock).play()


class _SimulatedClock:
    """The story's wall clock (epoch seconds), and the monotonic clock moving with it."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.now = start
        # From the real reading: SessionState's dataclass default factories keep the real
        # time.monotonic, so the fields they fill stay consistent with this clock.
        self._monotonic_start = time.monotonic()

    def wall(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self._monotonic_start + (self.now - self.start)


@contextmanager
def _monotonic_follows(clock: _SimulatedClock) -> Iterator[None]:
    """``time.monotonic``, as the session state and the gate see it, is the simulated one."""
    saved = [module.time for module in _PATCHED_MODULES]
    for module in _PATCHED_MODULES:
        setattr(module, "time", clock)
    try:
        yield
    finally:
        for module, original in zip(_PATCHED_MODULES, saved):
            setattr(module, "time", original)


class _RecordingHub(DeliveryHub):
    """The hub, keeping what reached an open toast stream: the offers the user saw."""

    def __init__(self, offers: OfferStore) -> None:
        super().__init__(offers)
        self.delivered: List[Offer] = []

    def publish(self, offer: Offer, *, now: float = 0.0) -> int:
        subscribers = super().publish(offer, now=now)
        if subscribers:
            self.delivered.append(offer)
        return subscribers


class _StoryPlayer:
    """One story on a fresh engine, its user's toast stream open."""

    def __init__(self, story: Story, config: ProactiveConfig, clock: _SimulatedClock) -> None:
        self.story = story
        # A story says when a trigger offers; whether this user's toast is then held out for
        # measuring is decided by a hash of the user id, which a story should not depend on.
        self.config = config = replace(config, triggers=tuple(replace(t, holdout_pct=0.0) for t in config.triggers))
        self.clock = clock
        stores = build_stores(config)
        self.hub = _RecordingHub(stores.offers)
        self.engine = ProactiveEngine(config, stores=stores, hub=self.hub, clock=clock.wall)
        self.next_tick = clock.start + config.driver.tick_seconds

    def play(self) -> StoryResult:
        self.engine.subscribe(self.story.user_id, now=self.clock.now)
        for step in self.story.steps:
            self._advance_to(self.clock.start + step.at)
            try:
                self._apply(step)
            except StepRefused as e:
                return StoryResult(self.story, self._verdict(), refused_step=f"line {step.line}: {e}")
            self.engine.tick(now=self.clock.now)
        return StoryResult(self.story, self._verdict())

    def _advance_to(self, when: float) -> None:
        """Time passes to ``when``, with the driver's periodic ticks on the way."""
        while self.next_tick <= when:
            self.clock.now = self.next_tick
            self.engine.tick(now=self.next_tick)
            self.next_tick += self.config.driver.tick_seconds
        self.clock.now = when

    def _apply(self, step: Step) -> None:
        user = self.story.user_id
        try:
            if isinstance(step, SendEvents):
                self._send(step)
            elif isinstance(step, ChatMessage):
                self.engine.on_chat_message(user)
            elif isinstance(step, TourStart):
                self.engine.start_tour(user, step.tour_id)
            elif isinstance(step, TourEnd):
                ended = self.engine.end_tour(user)["tour_id"]
                if step.tour_id is not None and ended != step.tour_id:
                    raise StepRefused(f"tour_end: the tour that ended is {ended!r}, not {step.tour_id!r}")
        except ProactiveError as e:
            raise StepRefused(str(e)) from None

    def _send(self, step: SendEvents) -> None:
        """One capture request, as posthog-js sends it, through the capture route's ingest."""
        payload: Dict[str, Any] = {
            "api_key": next(iter(self.config.ingest.project_keys), ""),
            "batch": [self._posthog_event(e) for e in step.events],
            "sent_at": _iso(self.clock.now),  # the simulated browser's clock is the server's
        }
        batch = normalise_batch(
            parse_capture_payload(payload), received_at=self.clock.now, skew=self.engine.stores.clock_skew
        )
        if batch.rejected:
            refused = batch.rejected[0]
            raise StepRefused(f"the ingest rejected the event at line {step.events[refused.index].line}: {refused.reason}")
        self.engine.ingest(batch, now=self.clock.now)

    def _posthog_event(self, event: StoryEvent) -> Dict[str, Any]:
        happened = self.clock.start + event.at
        properties: Dict[str, Any] = {
            "$current_url": APP_URL + event.page,
            "$host": APP_URL.split("://", 1)[1],
            "$pathname": event.page,
            "$session_id": self.story.session_id,
            "$lib": "web",
        }
        if event.kind == "pageview":
            name = "$pageview"
        else:
            name = "$autocapture"
            properties["$event_type"] = event.kind
            quoted = event.target.replace('"', '\\"')
            if event.kind == "click":
                properties["$el_text"] = event.target
                properties["$elements_chain"] = f'button.btn:attr__class="btn"nth-child="1"nth-of-type="1"text="{quoted}"'
            else:  # posthog-js names a submitted form by its chain only
                properties["$elements_chain"] = f'form:attr__aria-label="{quoted}"nth-child="1"nth-of-type="1"'
        return {
            "uuid": str(uuid.uuid4()),
            "event": name,
            "distinct_id": self.story.user_id,
            "timestamp": _iso(happened) if event.timestamp_format == "iso" else f"{happened:.3f}",
            "properties": properties,
        }

    def _verdict(self) -> Tuple[DiffRow, ...]:
        expect = self.story.expect
        offers = self.hub.delivered
        rows = [DiffRow("offers", _expected_offers(expect), ", ".join(o.trigger_id for o in offers) or "none")]
        if not rows[0].matches and offers:
            rows.append(DiffRow("offered at", None, ", ".join(f"{o.created_at - self.clock.start:g} s" for o in offers)))
        if isinstance(expect, ExpectOffer) and expect.tours is not None:
            tours = ", ".join(t.id for t in offers[0].tours) if offers else "no offer"
            rows.append(DiffRow("tours", ", ".join(expect.tours), tours))
        try:
            debug = self.engine.debug(self.story.user_id, now=self.clock.now)
        except ProactiveError as e:  # no activity to explain
            return (*rows, DiffRow("/debug", None, str(e)))
        reasons = {v["trigger_id"]: v["reason"] for v in debug["triggers"]}
        if isinstance(expect, ExpectNoOffer):
            trigger_id = expect.trigger_id or self.config.triggers[0].id
            rows.append(DiffRow(trigger_id, expect.reason, reasons.get(trigger_id, "not evaluated")))
        elif not rows[0].matches:  # why the expected trigger did not fire, as /debug says it
            rows.append(DiffRow(expect.trigger_id, None, reasons.get(expect.trigger_id, "not evaluated")))
            rows += [DiffRow(part, None, f"closed: {debug[part]['reason']}") for part in ("gate", "caps") if not debug[part]["open"]]
        return tuple(rows)


def _expected_offers(expect: Expectation) -> str:
    return expect.trigger_id if isinstance(expect, ExpectOffer) else "none"


def _check_names(story: Story, config: ProactiveConfig) -> None:
    expect = story.expect
    triggers = [t.id for t in config.triggers]
    tours = [t.id for t in config.tours]
    named_triggers = [expect.trigger_id] if expect.trigger_id is not None else []
    named_tours = [s.tour_id for s in story.steps if isinstance(s, (TourStart, TourEnd)) and s.tour_id is not None]
    if isinstance(expect, ExpectOffer):
        named_tours += list(expect.tours or ())
    elif not triggers:
        raise StoryConfigError(f"{story.location}: story {story.name!r}: `no_offer:` needs a trigger, and proactive.yml has none")
    for name, known, what in [(n, triggers, "trigger") for n in named_triggers] + [(n, tours, "tour") for n in named_tours]:
        if name not in known:
            raise StoryConfigError(
                f"{story.location}: story {story.name!r}: unknown {what} {name!r}; proactive.yml has {', '.join(known) or 'none'}"
            )


def _iso(ts: float) -> str:
    """posthog-js's timestamps: ISO-8601, milliseconds, a trailing Z."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

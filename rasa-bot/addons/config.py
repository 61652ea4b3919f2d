"""Typed view of ``proactive.yml``: session timings, activity bounds, tours and triggers.

Everything a Rasa team tunes lives in that file; this module turns it into frozen
dataclasses and says exactly which key is wrong when it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import yaml


class ConfigError(ValueError):
    """``proactive.yml`` is missing, unreadable or has a wrong value; the message names the key."""


@dataclass(frozen=True)
class SessionTimings:
    """Session-state gate timings (``SessionState`` interaction timeout and cooldown)."""

    interaction_timeout_s: float = 60.0
    cooldown_period_s: float = 120.0


@dataclass(frozen=True)
class ActivityLimits:
    """Bounds of the per-session activity store."""

    retention_s: float = 1800.0
    max_actions_per_session: int = 500
    idle_session_s: float = 3600.0
    max_sessions: int = 200_000


@dataclass(frozen=True)
class DriverSettings:
    """The periodic pass: ticks session states and evaluates time-based triggers."""

    tick_seconds: float = 5.0


@dataclass(frozen=True)
class TourConfig:
    """A tour the app can run: our id, the renderer's flow id, and where its anchors live."""

    id: str
    flow_id: str
    label: str
    page: str
    interaction_timeout_s: float = 60.0
    cooldown_period_s: float = 120.0


@dataclass(frozen=True)
class RepeatedActionTriggerConfig:
    """"Did the same thing N times in a window on a page, never found the faster way"."""

    id: str
    page: str
    action_hints: Tuple[str, ...]
    discovered_hints: Tuple[str, ...]
    min_count: int
    window_s: float
    body: str
    how_to: Tuple[str, ...] = ()
    tours: Tuple[str, ...] = ()


@dataclass(frozen=True)
class BuiltinTriggerConfig:
    """One of autoplay-sdk's catalogue triggers, selected by its id."""

    id: str
    name: str
    description: str
    body: Optional[str] = None
    how_to: Tuple[str, ...] = ()
    tours: Tuple[str, ...] = ()
    context_extra: Mapping[str, Any] = field(default_factory=dict)


TriggerConfig = Union[RepeatedActionTriggerConfig, BuiltinTriggerConfig]


@dataclass(frozen=True)
class ProactiveConfig:
    product_id: str
    session: SessionTimings
    activity: ActivityLimits
    driver: DriverSettings
    tours: Tuple[TourConfig, ...]
    triggers: Tuple[TriggerConfig, ...]

    def tour(self, tour_id: str) -> Optional[TourConfig]:
        return next((t for t in self.tours if t.id == tour_id), None)

    def trigger(self, trigger_id: str) -> Optional[TriggerConfig]:
        return next((t for t in self.triggers if t.id == trigger_id), None)


def load_config(path: Union[str, Path]) -> ProactiveConfig:
    """Read and validate a proactive config file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read proactive config {path}: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    return parse_config(raw, source=str(path))


def parse_config(raw: Any, *, source: str = "proactive config") -> ProactiveConfig:
    """Validate an already-parsed mapping (the shape of ``proactive.yml``)."""
    root = _Section(raw, source)
    session = root.section("session")
    activity = root.section("activity")
    driver = root.section("driver")
    tours = tuple(_tour(s) for s in root.sections("tours"))
    tour_ids = [t.id for t in tours]
    if len(set(tour_ids)) != len(tour_ids):
        raise ConfigError(f"{source}: tours: ids must be unique, got {tour_ids}")
    triggers = tuple(_trigger(s, set(tour_ids)) for s in root.sections("triggers"))
    trigger_ids = [t.id for t in triggers]
    if len(set(trigger_ids)) != len(trigger_ids):
        raise ConfigError(f"{source}: triggers: ids must be unique, got {trigger_ids}")
    return ProactiveConfig(
        product_id=root.string("product_id"),
        session=SessionTimings(
            interaction_timeout_s=session.number("interaction_timeout_s", 60.0),
            cooldown_period_s=session.number("cooldown_period_s", 120.0),
        ),
        activity=ActivityLimits(
            retention_s=activity.number("retention_s", 1800.0),
            max_actions_per_session=int(activity.number("max_actions_per_session", 500)),
            idle_session_s=activity.number("idle_session_s", 3600.0),
            max_sessions=int(activity.number("max_sessions", 200_000)),
        ),
        driver=DriverSettings(tick_seconds=driver.number("tick_seconds", 5.0)),
        tours=tours,
        triggers=triggers,
    )


def _tour(s: "_Section") -> TourConfig:
    return TourConfig(
        id=s.string("id"),
        flow_id=s.string("flow_id"),
        label=s.string("label"),
        page=s.string("page"),
        interaction_timeout_s=s.number("interaction_timeout_s", 60.0),
        cooldown_period_s=s.number("cooldown_period_s", 120.0),
    )


def _trigger(s: "_Section", tour_ids: set) -> TriggerConfig:
    kind = s.string("type")
    tours = s.strings("tours", required=False)
    unknown = [t for t in tours if t not in tour_ids]
    if unknown:
        raise ConfigError(f"{s.where}.tours: unknown tour id(s) {unknown}; known: {sorted(tour_ids)}")
    if kind == "repeated_action":
        return RepeatedActionTriggerConfig(
            id=s.string("id"),
            page=s.string("page"),
            action_hints=tuple(h.lower() for h in s.strings("action_hints")),
            discovered_hints=tuple(h.lower() for h in s.strings("discovered_hints", required=False)),
            min_count=int(s.number("min_count")),
            window_s=s.number("window_s"),
            body=s.string("body"),
            how_to=s.strings("how_to", required=False),
            tours=tours,
        )
    if kind == "builtin":
        extra = s.raw.get("context_extra", {})
        if not isinstance(extra, dict):
            raise ConfigError(f"{s.where}.context_extra: expected a mapping")
        return BuiltinTriggerConfig(
            id=s.string("id"),
            name=s.string("name"),
            description=s.string("description"),
            body=s.string("body") if "body" in s.raw else None,
            how_to=s.strings("how_to", required=False),
            tours=tours,
            context_extra=dict(extra),
        )
    raise ConfigError(f"{s.where}.type: expected 'repeated_action' or 'builtin', got {kind!r}")


class _Section:
    """A mapping in the YAML tree that knows its own path, for precise error messages."""

    def __init__(self, raw: Any, where: str) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
        self.raw = raw
        self.where = where

    def section(self, key: str) -> "_Section":
        return _Section(self.raw.get(key), f"{self.where}.{key}")

    def sections(self, key: str) -> Sequence["_Section"]:
        items = self.raw.get(key) or []
        if not isinstance(items, list):
            raise ConfigError(f"{self.where}.{key}: expected a list")
        return [_Section(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(items)]

    def string(self, key: str) -> str:
        value = self.raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.where}.{key}: expected a non-empty string, got {value!r}")
        return value.strip()

    def strings(self, key: str, *, required: bool = True) -> Tuple[str, ...]:
        value = self.raw.get(key)
        if value is None and not required:
            return ()
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"{self.where}.{key}: expected a non-empty list of strings, got {value!r}")
        return tuple(v.strip() for v in value)

    def number(self, key: str, default: Optional[float] = None) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{self.where}.{key}: expected a positive number, got {value!r}")
        return float(value)

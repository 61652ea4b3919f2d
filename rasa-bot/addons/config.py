"""Typed view of ``proactive.yml``: timings, bounds, tours, triggers, chat, LLM, caps and security.

Everything a Rasa team tunes lives in that file; this module turns it into frozen
dataclasses and says exactly which key is wrong when it cannot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Set, Tuple, Union

import yaml

from addons.urls import page_pattern_problem


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
    holdout_pct: float = 0.0  # percent of users whose offers fire and are recorded, never shown
    adopted: Optional[AdoptionRule] = None


@dataclass(frozen=True)
class BuiltinTriggerConfig:
    """One of autoplay-sdk's catalogue triggers, selected by its id."""

    id: str
    name: str
    description: str
    body: Optional[str] = None
    how_to: Tuple[str, ...] = ()
    tours: Tuple[str, ...] = ()
    holdout_pct: float = 0.0  # percent of users whose offers fire and are recorded, never shown
    adopted: Optional[AdoptionRule] = None
    context_extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionMatch:
    """Which actions a step of a trigger means: any of the label hints (contained, any case;
    none: any label), on a page matching ``page`` (none: any page), of one of ``kind``
    ("click", "submit", "change", "pageview"…; none: any kind)."""

    label: Tuple[str, ...] = ()
    page: Optional[str] = None
    kind: Tuple[str, ...] = ()


@dataclass(frozen=True)
class AdoptionRule:
    """What "did it the faster way" means for a trigger: an ``action`` within ``within_s``
    after one of its offers (shown or held out); the same action with no offer before it
    counts towards the baseline."""

    action: ActionMatch
    within_s: float = 1800.0


@dataclass(frozen=True)
class SequenceTriggerConfig:
    """"Did ``first``, then ``then`` within ``within_s``" (optionally with no ``not_between``
    in between), offered as ``then`` happens."""

    id: str
    first: ActionMatch
    then: ActionMatch
    within_s: float
    body: str
    not_between: Optional[ActionMatch] = None
    how_to: Tuple[str, ...] = ()
    tours: Tuple[str, ...] = ()
    holdout_pct: float = 0.0  # percent of users whose offers fire and are recorded, never shown
    adopted: Optional[AdoptionRule] = None


@dataclass(frozen=True)
class DwellTriggerConfig:
    """"On a page matching ``page`` for at least ``min_s`` with at most ``max_actions`` actions"."""

    id: str
    page: str
    min_s: float
    max_actions: int
    body: str
    how_to: Tuple[str, ...] = ()
    tours: Tuple[str, ...] = ()
    holdout_pct: float = 0.0  # percent of users whose offers fire and are recorded, never shown
    adopted: Optional[AdoptionRule] = None


@dataclass(frozen=True)
class AbsenceTriggerConfig:
    """"Did ``did``, then no ``then_not`` within ``within_s``", offered once that time is up."""

    id: str
    did: ActionMatch
    then_not: ActionMatch
    within_s: float
    body: str
    how_to: Tuple[str, ...] = ()
    tours: Tuple[str, ...] = ()
    holdout_pct: float = 0.0  # percent of users whose offers fire and are recorded, never shown
    adopted: Optional[AdoptionRule] = None


TriggerConfig = Union[
    RepeatedActionTriggerConfig, SequenceTriggerConfig, DwellTriggerConfig, AbsenceTriggerConfig, BuiltinTriggerConfig
]
# A trigger's `type` in proactive.yml → its dataclass (also what the validator checks keys against).
TRIGGER_TYPES: Dict[str, type] = {
    "repeated_action": RepeatedActionTriggerConfig,
    "sequence": SequenceTriggerConfig,
    "dwell": DwellTriggerConfig,
    "absence": AbsenceTriggerConfig,
    "builtin": BuiltinTriggerConfig,
}


@dataclass(frozen=True)
class LLMConfig:
    """The OpenAI-compatible model behind follow-ups and replies, as written in the YAML.

    Environment variables override these at start-up (see ``addons.llm.resolve_llm``), so a
    key never has to live in the file.
    """

    enabled: bool = True
    model: str = "gpt-4o-mini"
    api_key: Optional[str] = None
    base_url: Optional[str] = None
    timeout_s: float = 8.0
    temperature: float = 0.3
    max_tokens: int = 400


@dataclass(frozen=True)
class SummaryConfig:
    """The optional rolling session summary (one LLM call per ``every_actions`` new actions)."""

    enabled: bool = False
    every_actions: int = 10
    max_sessions: int = 10_000
    max_concurrent: int = 2


@dataclass(frozen=True)
class ChatConfig:
    """How the chat answers: follow-up spacing, how much activity the model sees, UI names."""

    follow_up_gap_s: float = 0.6
    activity_lines: int = 15
    ui_vocabulary: Tuple[str, ...] = ()
    summary: SummaryConfig = SummaryConfig()


@dataclass(frozen=True)
class OfferCapsConfig:
    """Limits across sessions, on top of the per-session gate; the defaults are the polite ones."""

    per_user_per_day: int = 3
    per_session_per_hour: int = 2
    min_gap_s: float = 600.0  # between any two offers to one user


@dataclass(frozen=True)
class DeliverySettings:
    """What happens to an offer no toast stream is open for, and to a stream that dropped."""

    pending_ttl_s: float = 120.0  # an offer waits this long for a tab to connect
    replay_s: float = 300.0  # a reconnecting stream (Last-Event-ID) gets what it missed within this


@dataclass(frozen=True)
class IdentityConfig:
    """Verified identities: HMAC-SHA256(secret, user_id), computed by the app's server."""

    secret: Optional[str] = None
    required: bool = True  # false: any user id is taken as is (local development only)
    debug_route: bool = True  # GET /debug/<user_id>; turn off in production


@dataclass(frozen=True)
class IngestLimits:
    """Who may send events, and how fast."""

    project_keys: Tuple[str, ...] = ()  # the api_key posthog-js sends; empty: any
    events_per_minute_per_user: int = 600
    requests_per_minute_per_ip: int = 1200


@dataclass(frozen=True)
class SourceSecret:
    """A push source: on when it has a secret (from the file, or its environment variable)."""

    secret: Optional[str] = None
    header: str = ""  # where the sender puts it (the connector signs instead: see addons.security.sources)


@dataclass(frozen=True)
class EventSources:
    """Event sources besides posthog-js (which needs none): each off until given a secret."""

    posthog_webhook: SourceSecret = SourceSecret(header="X-Proactive-Secret")
    autoplay_destination: SourceSecret = SourceSecret(header="X-Posthog-Secret")
    autoplay_connector: SourceSecret = SourceSecret(header="X-Connector-Signature")


@dataclass(frozen=True)
class RedisConfig:
    """The Redis several replicas share (docs/design/cluster.md): the chat layer (socket.io's
    client manager, the chat sessions) whenever it is set, and the offers' state with
    ``store: redis``. ``PROACTIVE_REDIS_URL`` wins."""

    url: Optional[str] = None  # redis://host:port/db; none: everything stays in this process
    # Users whose state a replica keeps between units of work, the least recently used going
    # first: a unit on one whose state nobody changed since skips loading it. Each costs 12 KB
    # and up (more with many actions), and more in RSS while others come and go (BENCHMARKS.md).
    cached_users: int = 1_000


@dataclass(frozen=True)
class InsightsConfig:
    """Measuring offers (``addons.insights``): what is kept, and who may read it."""

    holdout_seed: str = "proactive"  # which users fall in a trigger's holdout; change it to redraw them
    retention_days: int = 90  # daily funnel counts kept this long
    max_offers: int = 100_000  # offers whose life is followed (late reports for older ones are refused)
    token: Optional[str] = None  # Bearer token for /metrics and /insights/funnel; PROACTIVE_INSIGHTS_TOKEN wins


@dataclass(frozen=True)
class ProactiveConfig:
    product_id: str
    session: SessionTimings
    activity: ActivityLimits
    driver: DriverSettings
    tours: Tuple[TourConfig, ...]
    triggers: Tuple[TriggerConfig, ...]
    chat: ChatConfig = ChatConfig()
    llm: LLMConfig = LLMConfig()
    caps: OfferCapsConfig = OfferCapsConfig()
    delivery: DeliverySettings = DeliverySettings()
    identity: IdentityConfig = IdentityConfig()
    ingest: IngestLimits = IngestLimits()
    sources: EventSources = EventSources()
    insights: InsightsConfig = InsightsConfig()
    redis: RedisConfig = RedisConfig()
    store: str = "memory"  # where offers and their state live: "memory" (this process) or "redis" (shared)

    def tour(self, tour_id: str) -> Optional[TourConfig]:
        return next((t for t in self.tours if t.id == tour_id), None)

    def trigger(self, trigger_id: str) -> Optional[TriggerConfig]:
        return next((t for t in self.triggers if t.id == trigger_id), None)


def load_config(path: Union[str, Path]) -> ProactiveConfig:
    """Read and validate a proactive config file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
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
            max_actions_per_session=activity.count("max_actions_per_session", 500),
            idle_session_s=activity.number("idle_session_s", 3600.0),
            max_sessions=activity.count("max_sessions", 200_000),
        ),
        driver=DriverSettings(tick_seconds=driver.number("tick_seconds", 5.0)),
        tours=tours,
        triggers=triggers,
        chat=_chat(root.section("chat")),
        llm=_llm(root.section("llm")),
        caps=_caps(root.section("caps")),
        delivery=_delivery(root.section("delivery")),
        identity=_identity(root.section("identity")),
        ingest=_ingest(root.section("ingest")),
        sources=_sources(root.section("sources")),
        insights=_insights(root.section("insights")),
        redis=_redis(root.section("redis")),
        store=_store(root),
    )


def _caps(s: "_Section") -> OfferCapsConfig:
    d = OfferCapsConfig()
    return OfferCapsConfig(
        per_user_per_day=s.count("per_user_per_day", d.per_user_per_day),
        per_session_per_hour=s.count("per_session_per_hour", d.per_session_per_hour),
        min_gap_s=s.number("min_gap_s", d.min_gap_s, allow_zero=True),
    )


def _delivery(s: "_Section") -> DeliverySettings:
    d = DeliverySettings()
    return DeliverySettings(
        pending_ttl_s=s.number("pending_ttl_s", d.pending_ttl_s, allow_zero=True),
        replay_s=s.number("replay_s", d.replay_s, allow_zero=True),
    )


def _identity(s: "_Section") -> IdentityConfig:
    return IdentityConfig(
        secret=s.optional_string("secret"),
        required=s.flag("required", True),
        debug_route=s.flag("debug_route", True),
    )


def _ingest(s: "_Section") -> IngestLimits:
    d = IngestLimits()
    return IngestLimits(
        project_keys=s.strings("project_keys", required=False),
        events_per_minute_per_user=s.count("events_per_minute_per_user", d.events_per_minute_per_user),
        requests_per_minute_per_ip=s.count("requests_per_minute_per_ip", d.requests_per_minute_per_ip),
    )


def _sources(s: "_Section") -> EventSources:
    d = EventSources()

    def source(key: str, default: SourceSecret) -> SourceSecret:
        section = s.section(key)
        return SourceSecret(secret=section.optional_string("secret"), header=section.optional_string("header") or default.header)

    return EventSources(
        posthog_webhook=source("posthog_webhook", d.posthog_webhook),
        autoplay_destination=source("autoplay_destination", d.autoplay_destination),
        autoplay_connector=source("autoplay_connector", d.autoplay_connector),
    )


STORES = ("memory", "redis")


def _store(root: "_Section") -> str:
    store = root.optional_string("store") or "memory"
    if store not in STORES:
        raise ConfigError(f"{root.where}.store: expected one of {list(STORES)}, got {store!r}")
    return store


def _redis(s: "_Section") -> RedisConfig:
    return RedisConfig(url=s.optional_string("url"), cached_users=s.count("cached_users", RedisConfig.cached_users))


def _insights(s: "_Section") -> InsightsConfig:
    d = InsightsConfig()
    return InsightsConfig(
        holdout_seed=s.optional_string("holdout_seed") or d.holdout_seed,
        retention_days=s.count("retention_days", d.retention_days),
        max_offers=s.count("max_offers", d.max_offers),
        token=s.optional_string("token"),
    )


def _measured(s: "_Section") -> Dict[str, Any]:
    """The measurement keys every trigger kind takes: its holdout and its adoption rule."""
    holdout = s.number("holdout_pct", 0.0, allow_zero=True)
    if holdout > 100:
        raise ConfigError(f"{s.where}.holdout_pct: expected a percentage from 0 to 100, got {holdout:g}")
    adopted = None
    if "adopted" in s.raw:
        rule = s.section("adopted")
        adopted = AdoptionRule(action=_match(rule.section("action")), within_s=rule.number("within_s", 1800.0))
    return {"holdout_pct": holdout, "adopted": adopted}


def _chat(s: "_Section") -> ChatConfig:
    summary = s.section("summary")
    return ChatConfig(
        follow_up_gap_s=s.number("follow_up_gap_s", 0.6, allow_zero=True),
        activity_lines=s.count("activity_lines", 15),
        ui_vocabulary=s.strings("ui_vocabulary", required=False),
        summary=SummaryConfig(
            enabled=summary.flag("enabled", False),
            every_actions=summary.count("every_actions", 10),
            max_sessions=summary.count("max_sessions", 10_000),
            max_concurrent=summary.count("max_concurrent", 2),
        ),
    )


def _llm(s: "_Section") -> LLMConfig:
    return LLMConfig(
        enabled=s.flag("enabled", True),
        model=s.optional_string("model") or LLMConfig.model,
        api_key=s.optional_string("api_key"),
        base_url=s.optional_string("base_url"),
        timeout_s=s.number("timeout_s", LLMConfig.timeout_s),
        temperature=s.number("temperature", LLMConfig.temperature, allow_zero=True),
        max_tokens=s.count("max_tokens", LLMConfig.max_tokens),
    )


def _tour(s: "_Section") -> TourConfig:
    return TourConfig(
        id=s.string("id"),
        flow_id=s.string("flow_id"),
        label=s.string("label"),
        page=_page(s, "page"),
        interaction_timeout_s=s.number("interaction_timeout_s", 60.0),
        cooldown_period_s=s.number("cooldown_period_s", 120.0),
    )


def _trigger(s: "_Section", tour_ids: Set[str]) -> TriggerConfig:
    kind = s.string("type")
    tours = s.strings("tours", required=False)
    unknown = [t for t in tours if t not in tour_ids]
    if unknown:
        raise ConfigError(f"{s.where}.tours: unknown tour id(s) {unknown}; known: {sorted(tour_ids)}")
    if kind == "repeated_action":
        return RepeatedActionTriggerConfig(
            id=s.string("id"),
            page=_page(s, "page"),
            action_hints=tuple(h.lower() for h in s.strings("action_hints")),
            discovered_hints=tuple(h.lower() for h in s.strings("discovered_hints", required=False)),
            min_count=s.count("min_count"),
            window_s=s.number("window_s"),
            body=s.string("body"),
            how_to=s.strings("how_to", required=False),
            tours=tours,
            **_measured(s),
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
            **_measured(s),
        )
    trigger_id, body, how_to = s.string("id"), s.string("body"), s.strings("how_to", required=False)
    if kind == "sequence":
        return SequenceTriggerConfig(
            id=trigger_id, first=_match(s.section("first")), then=_match(s.section("then")),
            within_s=s.number("within_s"), body=body, how_to=how_to, tours=tours,
            not_between=_match(s.section("not_between")) if "not_between" in s.raw else None, **_measured(s),
        )
    if kind == "dwell":
        return DwellTriggerConfig(
            id=trigger_id, page=_page(s, "page"), min_s=s.number("min_s"), max_actions=s.count("max_actions"),
            body=body, how_to=how_to, tours=tours, **_measured(s),
        )
    if kind == "absence":
        return AbsenceTriggerConfig(
            id=trigger_id, did=_match(s.section("did")), then_not=_match(s.section("then_not")),
            within_s=s.number("within_s"), body=body, how_to=how_to, tours=tours, **_measured(s),
        )
    raise ConfigError(f"{s.where}.type: expected one of {sorted(TRIGGER_TYPES)}, got {kind!r}")


def _match(s: "_Section") -> ActionMatch:
    match = ActionMatch(
        label=tuple(h.lower() for h in s.strings("label", required=False)),
        page=_page(s, "page") if "page" in s.raw else None,
        kind=tuple(k.lower() for k in s.strings("kind", required=False)),
    )
    if match == ActionMatch():
        raise ConfigError(f"{s.where}: expected at least one of label, page, kind")
    return match


def _page(s: "_Section", key: str) -> str:
    """A page pattern: a path fragment ("/projects": any path containing it) or a glob over
    the whole path ("/projects/*/settings", "/projects/:id", "/docs/**")."""
    pattern = s.string(key)
    problem = page_pattern_problem(pattern)
    if problem:
        raise ConfigError(f"{s.where}.{key}: {problem}")
    return pattern


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

    def optional_string(self, key: str) -> Optional[str]:
        value = self.raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self.where}.{key}: expected a string, got {value!r}")
        return value.strip()

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where}.{key}: expected true or false, got {value!r}")
        return value

    def count(self, key: str, default: Optional[int] = None) -> int:
        """A whole number of at least 1 (sizes, limits): 0.5 or 0 is a mistake, not a rounding."""
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{self.where}.{key}: expected a whole number of at least 1, got {value!r}")
        return value

    def number(self, key: str, default: Optional[float] = None, *, allow_zero: bool = False) -> float:
        value = self.raw.get(key, default)
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
                or (value == 0 and not allow_zero)):
            expected = "a non-negative number" if allow_zero else "a positive number"
            raise ConfigError(f"{self.where}.{key}: expected {expected}, got {value!r}")
        return float(value)

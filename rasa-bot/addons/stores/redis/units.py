"""Engine operations on one user as units of work over Redis (docs/design/cluster.md): load the
user's document, run the unchanged synchronous engine on an in-memory bundle made from it,
commit the bundle's new document only if nobody committed since, else start over.

Units are batched: one worker per replica takes every unit waiting, loads all their users in
one round trip, runs each user's units in order on one bundle, and commits every user in one
more round trip (each user's commit lands or not on its own). Under load a round trip serves
many requests; alone, a unit waits for nothing. One worker also means the units of one replica
never race each other, only other replicas'.

A replica keeps the bundles of the users it served last (``redis.cached_users``) with the
version each holds. When the load finds a user still at that version, nobody changed the user
since: the unit runs on the kept bundle, and the load sent neither document nor rows. The
commit writes the document and only the action rows that changed (``rows_change``), so neither
costs more as a user's sessions grow. A bundle whose commit did not land, or whose unit raised,
holds what Redis does not, and is dropped.

What a unit did reaches the rest of the process only once its commit landed: the offers it
published (for the caller to hand to streams), its counts (``StagedCounters``) and its log lines
(``_HeldLog``). A unit that lost the race leaves no trace, so a retry counts, publishes and logs
once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import (
    Any, Callable, Deque, Dict, Generic, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar,
)

from addons.config import ProactiveConfig
from addons.errors import StoreUnavailable
from addons.insights.metrics import OfferCounters, StagedCounters
from addons.offers.delivery import DeliveryHub, Subscription
from addons.offers.engine import ProactiveEngine
from addons.offers.evaluation import FullRescan
from addons.offers.gate import SessionGate
from addons.offers.offer import Offer
from addons.stores.memory import InMemoryOfferLedger, memory_stores
from addons.stores.protocols import OfferStore
from addons.stores.redis.user_states import Commit, LoadedState, RedisUserStates, RowsChange, compact_json
from addons.stores.user_state import (
    ROW_INDEX, EarlierSection, KnownSession, SessionRows, export_user, import_user, join_actions, kept_until,
    section_revisions, session_revisions, session_rows,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 8  # concurrent units on one user: each retry sees the others' commits
MAX_BATCH = 64  # units per round trip
YIELD_AFTER_S = 0.002  # a batch's engine work runs this long at most before others get the loop
# A bundle holds one user, whose document carries their offer records for as long as Redis
# keeps it: the newest this many, far more than the caps let into any adoption window.
RECORDS_PER_USER = 100


class _HeldLog(logging.Filter):
    """Holds back what the engine and the SDK log during a unit of work, for after its commit:
    a unit that lost the race runs again, and its lines (an offer firing, say) would otherwise
    be logged once per attempt. Installed on the ``addons`` and ``autoplay_sdk`` loggers;
    ``with _HELD_LOG as held:`` holds what is logged inside (the engine is synchronous:
    nothing else logs then)."""

    ROOTS = ("addons", "autoplay_sdk")

    def __init__(self) -> None:
        super().__init__()
        self._held: Optional[List[logging.LogRecord]] = None

    def install(self) -> None:
        for name in list(logging.root.manager.loggerDict):
            if name.split(".")[0] in self.ROOTS:
                logging.getLogger(name).addFilter(self)  # once: a filter already there is not added again

    def filter(self, record: logging.LogRecord) -> bool:
        if self._held is None:
            return True
        self._held.append(record)
        return False

    def __enter__(self) -> List[logging.LogRecord]:
        self._held = []
        return self._held

    def __exit__(self, *exc_info: object) -> None:
        self._held = None


_HELD_LOG = _HeldLog()


def _log(records: List[logging.LogRecord]) -> None:
    for record in records:
        logging.getLogger(record.name).handle(record)


class UserBusy(StoreUnavailable):
    """Units of work on the user kept losing the race; the request may be retried shortly."""


@dataclass(frozen=True)
class UnitResult(Generic[T]):
    value: T
    published: List[Offer]  # offers made during the unit, for the user's streams
    attempts: int


@dataclass(eq=False)
class _Unit(Generic[T]):
    user_id: str
    operation: Callable[[ProactiveEngine], T]
    now: float
    min_streams: int
    done: "asyncio.Future[UnitResult[T]]"
    attempts: int = 0

    def resolve(self, result: UnitResult[T]) -> None:
        if not self.done.done():  # its caller may have gone (cancelled)
            self.done.set_result(result)

    def fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)


class _UnitHub(DeliveryHub):
    """The unit's hub: it knows how many streams the user has open anywhere (read with the
    state, or more: a stream opening counts itself), and keeps what was published for after
    the commit. It holds no stream: the replay a unit queues is handed to the real one."""

    def __init__(self, offers: OfferStore, user_id: str) -> None:
        super().__init__(offers)
        self._user_id = user_id
        self.streams = 0
        self.published: List[Offer] = []

    def subscribe(self, user_id: str, *, last_event_id: Optional[str] = None, now: float = 0.0) -> Subscription:
        subscription = super().subscribe(user_id, last_event_id=last_event_id, now=now)
        self.unsubscribe(subscription)
        return subscription

    def subscriber_count(self, user_id: Optional[str] = None) -> int:
        return self.streams if user_id in (None, self._user_id) else 0

    def publish(self, offer: Offer, *, now: float = 0.0) -> int:
        self.offers.record_delivered(offer, now)
        self.published.append(offer)
        return self.streams


# Sections with a part per session (a map by session id, or the activity's list of sessions):
# written session by session, so a unit serialises again only the sessions it changed, not
# every session the user has open.
PER_SESSION_SECTIONS = ("activity", "session_states", "tick_plan")


@dataclass(slots=True)  # one is made per changed section and unit of work: no __dict__ beside it
class _Section:
    """One top-level section of a user's document as last written."""

    value: Any
    json: str  # '"key":value', as it goes into the document
    revision: Optional[int] = None  # of the store it was exported from, if ``section_revisions`` has one
    entries: Dict[str, Tuple[Any, str]] = field(default_factory=dict)  # a per-session section's: session → value, JSON


class _Bundle:
    """One user's engine, on in-memory stores that hold that user only, and what Redis holds
    of them: the version, and each session's list of action rows (their sequence numbers)."""

    def __init__(self, config: ProactiveConfig, user_id: str, *, incremental: bool) -> None:
        self.version = 0
        self.rows: Dict[str, List[int]] = {}
        self.pending: Set[str] = set()  # the offers parked for the user, by id
        self.sections: Dict[str, _Section] = {}  # the document's sections as last written
        self.sessions: Dict[str, KnownSession] = {}  # each session's parts as last exported (and committed)
        self.now = 0.0  # the engine's clock: each unit's own time
        self.stores = memory_stores(config, revised=True,
                                    max_offers=min(RECORDS_PER_USER, config.insights.max_offers))
        self.hub = _UnitHub(self.stores.offers, user_id)
        self.staged = StagedCounters()
        self.engine = ProactiveEngine(config, stores=self.stores, hub=self.hub, clock=lambda: self.now,
                                      incremental=incremental, counters=self.staged)

    def earlier(self) -> Dict[str, EarlierSection]:
        """The sections of ``section_revisions`` as last written, each with its store's
        revision then (``export_user`` reuses what did not move since)."""
        return {key: EarlierSection(section.value, section.revision)
                for key, section in self.sections.items() if section.revision is not None}


@dataclass
class _UserPass:
    """One user's units of a batch, run on one bundle, and what they came to."""

    loaded: LoadedState
    bundle: _Bundle
    ran: List[Tuple[_Unit[Any], Any, List[Offer]]] = field(default_factory=list)
    rows: Dict[str, List[int]] = field(default_factory=dict)  # what Redis holds once the commit lands
    log: List[logging.LogRecord] = field(default_factory=list)  # logged once the commit lands
    pending: Set[str] = field(default_factory=set)


class UserUnits:
    def __init__(self, config: ProactiveConfig, states: RedisUserStates, *, counters: OfferCounters,
                 incremental: bool = True, max_batch: int = MAX_BATCH) -> None:
        self._config = config
        self._states = states
        self._counters = counters
        self._incremental = incremental
        self._max_batch = max_batch
        self._cached_users = config.redis.cached_users
        self._adoption_window_s = max((t.adopted.within_s for t in config.triggers if t.adopted), default=0.0)
        self._bundles: "OrderedDict[str, _Bundle]" = OrderedDict()  # least recently committed first
        self._waiting: Deque[_Unit[Any]] = deque()
        self._worker: Optional["asyncio.Task[None]"] = None
        _HELD_LOG.install()

    async def run(self, user_id: str, operation: Callable[[ProactiveEngine], T], *, now: float,
                  min_streams: int = 0) -> UnitResult[T]:
        """``operation`` on an engine holding only ``user_id``'s state, committed atomically.
        ``min_streams``: the user has at least that many toast streams open (one opening now)."""
        loop = asyncio.get_running_loop()
        unit: _Unit[T] = _Unit(user_id, operation, now, min_streams, loop.create_future())
        self._waiting.append(unit)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._work(), name="proactive_units")
        return await unit.done

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    def cached_users(self) -> int:
        """Users whose bundle this replica keeps."""
        return len(self._bundles)

    async def _work(self) -> None:
        while self._waiting:
            batch: List[_Unit[Any]] = []
            while self._waiting and len(batch) < self._max_batch:
                unit = self._waiting.popleft()
                if not unit.done.done():
                    batch.append(unit)
            try:
                await self._run_batch(batch)
            except asyncio.CancelledError:
                self._fail(batch, StoreUnavailable("the replica is stopping"))
                raise
            except Exception as e:  # the store is away (or a bug): every caller hears of it
                self._fail(batch, e)

    def _fail(self, batch: List[_Unit[Any]], error: BaseException) -> None:
        """The batch's commit may or may not have landed: its users' bundles are not trusted."""
        for unit in batch:
            unit.fail(error)
        self._forget(unit.user_id for unit in batch)

    async def _run_batch(self, batch: List[_Unit[Any]]) -> None:
        if not batch:
            return
        by_user: Dict[str, List[_Unit[Any]]] = {}
        for unit in batch:
            by_user.setdefault(unit.user_id, []).append(unit)
        kept = {user_id: self._bundles[user_id].version for user_id in by_user if user_id in self._bundles}
        loaded = await self._states.load_many(list(by_user), kept)
        committing: List[Tuple[_UserPass, Commit]] = []
        ran_since = time.perf_counter()
        # Wall minus monotonic clock for the timers, in ms: steady, so a section whose timers
        # did not move exports the same numbers and is not written again (``document_json``).
        offset = round(time.time() - SessionGate.clock(), 3)
        for state in loaded:
            with _HELD_LOG as held:
                ran = self._run_user(state, by_user[state.user_id], offset)
            if ran is None:
                _log(held)  # a unit failed: what it logged tells why
                self._forget([state.user_id])
            else:
                ran[0].log = held
                committing.append(ran)
            if time.perf_counter() - ran_since > YIELD_AFTER_S:  # the engine is synchronous: let
                await asyncio.sleep(0)  # streams and requests in now and then, not after every user
                ran_since = time.perf_counter()
        landed = await self._states.commit_many([(user_pass.loaded, commit) for user_pass, commit in committing])
        retry: List[_Unit[Any]] = []
        for (user_pass, _), version in zip(committing, landed):
            user_id = user_pass.loaded.user_id
            if version is not None:
                bundle = user_pass.bundle
                bundle.version, bundle.rows, bundle.pending = version, user_pass.rows, user_pass.pending
                self._keep(user_id, user_pass.bundle)
                user_pass.bundle.staged.flush(self._counters)
                _log(user_pass.log)
                for unit, value, published in user_pass.ran:
                    unit.resolve(UnitResult(value, published, unit.attempts + 1))
                continue
            logger.debug("units of work on user %s lost a race; again", user_id)
            self._forget([user_id])
            for unit, _, _ in user_pass.ran:
                unit.attempts += 1
                if unit.attempts >= MAX_ATTEMPTS:
                    unit.fail(UserBusy(f"user {unit.user_id!r} is being updated by too many requests at once; retry"))
                else:
                    retry.append(unit)
        self._waiting.extendleft(reversed(retry))  # first in the next batch, in their order

    def _keep(self, user_id: str, bundle: _Bundle) -> None:
        self._bundles[user_id] = bundle
        self._bundles.move_to_end(user_id)
        while len(self._bundles) > self._cached_users:
            self._bundles.popitem(last=False)

    def _forget(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            self._bundles.pop(user_id, None)

    def _bundle_for(self, loaded: LoadedState, now: float, offset: float) -> _Bundle:
        """The kept bundle if Redis is still at its version, else a new one holding what was
        loaded (``ValueError`` and the like for a document this code cannot read)."""
        if loaded.current:
            kept = self._bundles.get(loaded.user_id)
            if kept is None or kept.version != loaded.version:  # only bundles kept are asked as current
                raise RuntimeError(f"user {loaded.user_id!r} loaded as current at version {loaded.version}, "
                                   "but no bundle of that version is kept")
            return kept
        bundle = _Bundle(self._config, loaded.user_id, incremental=self._incremental)
        if loaded.state:  # after the engine: its index and tick plan observe the import
            import_user(bundle.stores, join_actions(loaded.state, loaded.rows), now=now, clock_offset=offset)
        elif loaded.first_name:  # the document went with the sessions; the name stays longer
            bundle.stores.first_names.set(loaded.user_id, loaded.first_name)
        bundle.version = loaded.version
        bundle.rows = {session_id: [row[ROW_INDEX] for row in rows] for session_id, rows in loaded.rows.items()}
        bundle.pending = _pending_ids(loaded.state)
        return bundle

    def _run_user(self, loaded: LoadedState, units: List[_Unit[Any]],
                  offset: float) -> Optional[Tuple[_UserPass, Commit]]:
        """The user's units in order on one bundle, and the commit of what they did. None if a
        unit raised: it gets the error, nothing of the user is committed, and the units after
        it wait for the next batch (those before it run again there)."""
        user_id = loaded.user_id
        try:
            bundle = self._bundle_for(loaded, units[0].now, offset)
        except Exception as e:  # a document this code cannot read: every unit of the user hears of it
            for unit in units:
                unit.fail(e)
            return None
        user_pass = _UserPass(loaded, bundle)
        hub = bundle.hub
        hub.published = []
        for unit in units:
            bundle.now = unit.now
            hub.streams = max(loaded.streams, unit.min_streams)
            first = len(hub.published)
            try:
                value = unit.operation(bundle.engine)
            except Exception as e:
                unit.fail(e)
                bundle.staged.discard()
                self._waiting.extendleft(reversed([u for u in units if u is not unit]))
                return None
            user_pass.ran.append((unit, value, hub.published[first:]))
        now = bundle.now
        revisions = section_revisions(bundle.stores)
        exported_before = bundle.sessions
        state = export_user(bundle.stores, user_id, now=now, actions=False, clock_offset=offset,
                            earlier=bundle.earlier(), known_sessions=exported_before)
        bundle.sessions = session_revisions(bundle.stores, state, clock_offset=offset, known=exported_before)
        ledger = bundle.stores.ledger
        counts = ledger.drain_counts() if isinstance(ledger, InMemoryOfferLedger) else {}
        # The offers leave for the streams in the commit's own script: committed and sent, or
        # neither. An offer parked while no stream seemed open is announced once (presence can
        # be behind; a replica that holds a stream of the user takes it).
        messages = [compact_json(offer.to_stored_dict()) for offer in hub.published]
        user_pass.pending = _pending_ids(state)
        if user_pass.pending - bundle.pending and hub.streams == 0:
            messages.append(compact_json({"pending_for": user_id}))
        changes: Dict[str, RowsChange] = {}
        for session in state["activity"]:
            session_id = session["session_id"]
            before = exported_before.get(session_id)
            if before is not None and before.activity_revision == bundle.sessions[session_id].activity_revision:
                # untouched since the last unit, whose commit wrote its rows
                if session_id in bundle.rows:
                    user_pass.rows[session_id] = bundle.rows[session_id]
                continue
            rows = session_rows(bundle.stores, session_id)
            if rows is None:
                continue
            change, after = rows_change(bundle.rows.get(rows.session_id, []), rows)
            if change is not None:
                changes[rows.session_id] = change
            if after:
                user_pass.rows[rows.session_id] = after
        for session_id in bundle.rows.keys() - user_pass.rows.keys() - changes.keys():
            changes[session_id] = RowsChange(replace=True)  # the session is gone, or has no action left
        document = document_json(state, bundle.sections, revisions) if _holds_anything(state) else None
        keep_until = kept_until(state, adoption_window_s=self._adoption_window_s) if document else None
        commit = Commit(state=document, due_at=self._next_due(state, bundle.engine, now), counts=counts,
                        messages=messages, rows=changes, keep_s=0.0 if keep_until is None else keep_until - now,
                        first_name=state["first_name"])
        try:
            commit.check()
        except ValueError as e:
            for unit in units:
                unit.fail(e)
            return None
        return user_pass, commit

    def _next_due(self, state: Mapping[str, Any], engine: ProactiveEngine, now: float) -> Optional[float]:
        """When the periodic pass must next look at the user: the earliest planned look, pending
        expiry or idle eviction (every tick while sessions exist, for the full rescan)."""
        sessions = state.get("activity") or []
        if isinstance(engine.strategy, FullRescan):
            return now + self._config.driver.tick_seconds if sessions else None
        times: List[float] = []
        for plan in (state.get("tick_plan") or {}).values():
            if plan.get("next_tick"):
                times.append(now)
            for key in ("wake_at", "watch_until"):
                if plan.get(key) is not None:
                    times.append(float(plan[key]))
            if plan.get("watched") and plan.get("watch_until") is None:
                times.append(now)
        times += [float(p["expires_at"]) for p in state.get("pending") or []]
        times += [float(s["last_seen"]) + self._config.activity.idle_session_s for s in sessions]
        finite = [t for t in times if math.isfinite(t)]
        return min(finite) if finite else None


def rows_change(before: List[int], rows: SessionRows) -> Tuple[Optional[RowsChange], List[int]]:
    """How a session's list in Redis, whose rows have the sequence numbers ``before``, becomes
    ``rows``, and the sequence numbers it then has. No change if it already is; the oldest
    trimmed and the new appended if that is what happened (the usual ingest); else written
    anew (an action that arrived late sorts before rows already written).

    The activity store inserts each action in its place and drops only the oldest
    (``InMemoryActivityStore._trim``), so the rows of ``before`` still held are the session's
    first ones: where the session's first row is in ``before`` and whether its last one follows
    tell what happened, at a cost that follows the new rows, not the session's length."""
    count = len(rows)
    if not count:
        return (RowsChange(replace=True) if before else None), []
    first = rows.sequence_number(0)
    trim = before.index(first) if first in before else len(before)
    kept = len(before) - trim
    if kept and (kept > count or rows.sequence_number(kept - 1) != before[-1]):  # one arrived among them
        return RowsChange(append=_json_rows(rows.rows(0)), replace=True), rows.sequence_numbers()
    if not trim and kept == count:
        return None, before
    return RowsChange(append=_json_rows(rows.rows(kept)), trim=trim), before[trim:] + rows.sequence_numbers(kept)


def _json_rows(rows: List[List[Any]]) -> Tuple[str, ...]:
    return tuple(compact_json(row) for row in rows)


def document_json(state: Mapping[str, Any], sections: Dict[str, _Section], revisions: Mapping[str, int]) -> str:
    """``state`` as JSON, each top-level section serialised only if it differs from what
    ``sections`` holds (an ingest changes the activity, seldom the session states, plan,
    offers or ledger; comparing costs less than writing); ``sections`` is updated, with the
    stores' ``revisions`` the state was exported at."""
    parts = []
    for key, value in state.items():
        kept = sections.get(key)
        if kept is None or (kept.value is not value and kept.value != value):
            kept = sections[key] = _section_json(key, value, kept)
        kept.revision = revisions.get(key)
        parts.append(kept.json)
    return "{" + ",".join(parts) + "}"


def _section_json(key: str, value: Any, before: Optional[_Section]) -> _Section:
    """A section serialised; one of ``PER_SESSION_SECTIONS`` reuses each session's JSON from
    ``before`` where that session's value is the same (unchanged states are the same objects,
    ``export_user``'s ``known_sessions``, so most comparisons stop at identity)."""
    if key not in PER_SESSION_SECTIONS:
        return _Section(value, f'"{key}":{compact_json(value)}')
    written = before.entries if before is not None else {}
    entries: Dict[str, Tuple[Any, str]] = {}
    as_map = isinstance(value, dict)
    for session_id, item in (value.items() if as_map else ((item["session_id"], item) for item in value)):
        entry = written.get(session_id)
        if entry is None or (entry[0] is not item and entry[0] != item):
            entry = (item, f"{compact_json(session_id)}:{compact_json(item)}" if as_map else compact_json(item))
        entries[session_id] = entry
    body = ",".join(json for _, json in entries.values())
    return _Section(value, f'"{key}":{{{body}}}' if as_map else f'"{key}":[{body}]', entries=entries)


def _pending_ids(state: Optional[Mapping[str, Any]]) -> Set[str]:
    return {str(parked["offer"]["offer_id"]) for parked in (state or {}).get("pending") or ()}


def _holds_anything(state: Mapping[str, Any]) -> bool:
    return any(value for key, value in state.items() if key not in ("format", "user_id"))

"""One user's whole state, out of an in-memory store bundle and into another, as plain JSON.

The unit of work of ``docs/design/cluster.md`` moves one user's state between a store bundle
and Redis; this is its Redis-free core. ``export_user`` reads everything the in-memory
stores (``addons.stores.memory``) hold for a user into a dict of JSON types;
``import_user`` writes such a dict into another bundle, fresh or not, perhaps in another
process, so that the bundle behaves for that user as the first one did.

What moves (the dict's top-level keys, besides ``format`` and ``user_id``):

* ``activity``: the user's sessions, least recently seen first, each with its actions
  (autoplay-sdk ``SlimAction`` fields, ``index`` being the store's sequence number that
  orders actions of one timestamp, and the PostHog event id), the event ids seen (so a
  retried batch still counts once) and ``last_seen`` (idle eviction). "Latest session" and
  "latest action" follow from the actions' timestamps.
* ``session_states``: session id → autoplay-sdk ``SessionState.to_dict()``, its monotonic
  timers turned to wall-clock (below). Its ``metadata`` is the gate's: the last offer
  (``at`` is wall-clock already), the evidence consumed per trigger (epoch seconds), the
  active tour and the kind of caps refusal last logged; no monotonic time is kept there.
* ``tick_plan``: session id → when the tick must look at it: ``next_tick``, ``wake_at``
  (epoch seconds), and the gate watch (``watched``; ``watch_until``, turned to wall-clock,
  null for "at the next tick").
* ``expired_unseen``: session id → when its offer expired unseen.
* ``offer_history``: the offers the caps count, ``[{"at", "session_id"}]``, oldest first.
* ``pending``: ``[{"offer", "expires_at"}]``, parked offers (``Offer.to_stored_dict``).
* ``delivered``: ``[{"offer", "at"}]``, the replay history ``Last-Event-ID`` reads.
* ``first_name``: from PostHog person properties, or null.
* ``ledger``: the insights' ``records`` of the user's offers (``OfferRecord.to_dict``,
  oldest first), ``latest`` (trigger id → offer id) and ``baselines`` (trigger id → when).

The per-session sections speak for the user's sessions: those of ``activity`` and those
of the user's pending and delivered offers. What does not move, being nobody's in
particular: the ledger's daily counts (the funnel's sums over every user; each replica,
or Redis, adds to them where the offer happened), chat owners (keyed by chat session,
claimed by the first user and shared across replicas by the chat layer; moving a claim
with a user could hand one user's chat to another), and clock skew (keyed by browser
device, which several users may share). Nor does what is per process: open streams,
Prometheus metrics.

**Clocks.** ``SessionState`` stamps ``last_interaction_at``, ``thinking.cooldown_started_at``
and ``proactive``/``reactive`` ``last_message_at`` with ``time.monotonic()``, and the tick
plan's gate watch is on that clock too (``SessionGate.clock``); a monotonic time means
nothing in another process. They leave as wall = monotonic − ``SessionGate.clock()`` + ``now``
and come back as monotonic = wall − ``now`` + ``SessionGate.clock()``, ``now`` being the
engine's wall clock at each end. Every other time here is the engine's wall clock already.
Replicas' wall clocks must agree (NTP).

**Import replaces.** ``import_user`` makes the bundle's view of the user the imported one:
the user's sessions it held that the state does not name go (as eviction would drop
them), and each named session's activity, state, plan and mark are replaced; importing the
same state twice is the same as once, and other users are untouched (but for the stores'
own bounds: a full activity store still evicts its least recently seen session).

**Observers.** The activity store tells its observers ``restored`` for every imported
action (and ``dropped`` for a session's replaced contents): the trigger index
(``addons.offers.index``) marks them as new actions, the incremental strategy plans a look,
and the adoption watcher does not count them again. The tick plan is imported after the
activity, so the exported plan replaces that look.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple, Type, TypeVar

from autoplay_sdk.agent_state.v2 import SessionState
from autoplay_sdk.core.models import SlimAction

from addons.insights.records import OfferRecord
from addons.offers.gate import SessionGate
from addons.offers.offer import Offer
from addons.stores.memory.activity import InMemoryActivityStore, SessionActivity, StoredSession
from addons.stores.memory.ledger import InMemoryOfferLedger, UserLedger
from addons.stores.memory.offers import InMemoryOfferHistory, InMemoryOfferStore, UserOffers
from addons.stores.memory.people import InMemoryFirstNames
from addons.stores.memory.schedule import RevisedTickSchedule, SessionPlan, TickSchedule
from addons.stores.memory.sessions import InMemorySessionStateStore, RevisedSessionStateStore
from addons.stores.protocols import DAY_S, NOW, Stores

# 3: a session's event ids are its rows' (no list of them); 2, still read: actions as rows
# (``_activity_to_json``) and the ids listed apart; 1, still read: actions as objects.
FORMAT = 3
READABLE_FORMATS = (1, 2, 3)
ROW_INDEX = 1  # where an action row (and a stored entry) holds the action's sequence number

# The monotonic timers of ``SessionState.to_dict()``, as paths into it.
MONOTONIC_FIELDS = (
    ("last_interaction_at",),
    ("thinking", "cooldown_started_at"),
    ("proactive", "last_message_at"),
    ("reactive", "last_message_at"),
)
_ACTION_FIELDS = tuple(f.name for f in fields(SlimAction))

T = TypeVar("T")
Convert = Callable[[float], float]


def export_user(stores: Stores, user_id: str, *, now: float, actions: bool = True,
                clock_offset: Optional[float] = None, earlier: Optional[Mapping[str, EarlierSection]] = None,
                known_sessions: Optional[Mapping[str, KnownSession]] = None) -> Dict[str, Any]:
    """Everything ``stores`` holds for ``user_id``, as JSON types (see the module);
    ``now`` is the engine's wall clock (epoch seconds). An unknown user's state is empty.
    ``actions=False``: the sessions without their ``actions`` (a store that keeps them apart
    reads what changed with ``session_rows``). ``clock_offset``: wall clock minus
    ``SessionGate.clock()``, for the timers (see the module); by default ``now`` minus it.
    ``earlier``: sections of ``section_revisions`` as an earlier export of the same stores gave
    them, each with its store's revision then. One whose store's revision stands still is given
    back as it is; in one that moved, a parked or delivered offer (an offer never changes) and
    an insights record not written since are given back as they were there.
    ``known_sessions``: each session's parts as an earlier export gave them
    (``session_revisions``, of stores made with ``revised=True``); a part whose revision stands
    still, exported with the same clock offset, is given back as it is, so a user's other
    sessions cost next to nothing (the activity only with ``actions=False``: its actions are
    not kept)."""
    activity = _memory(stores.activity, InMemoryActivityStore)
    session_states = _memory(stores.session_states, InMemorySessionStateStore)
    offers = _memory(stores.offers, InMemoryOfferStore)
    plan = _memory(stores.tick_plan, TickSchedule)
    revisions = _SessionRevisions(stores) if known_sessions else None
    offset = now - SessionGate.clock() if clock_offset is None else clock_offset
    to_wall = _shift(offset)
    earlier = earlier or {}
    now_at = section_revisions(stores) if earlier else {}
    known = {key: section.value for key, section in earlier.items() if section.revision == now_at.get(key)}
    known_sessions = known_sessions or {}

    sessions = activity.user_session_ids(user_id)
    user_offers = offers.export_user(user_id)
    session_ids = _sessions_of(sessions, user_offers)

    headers: List[Mapping[str, Any]] = []
    for session_id in sessions:
        kept = known_sessions.get(session_id)
        if not actions and revisions is not None and kept is not None and kept.activity is not None \
                and kept.activity_revision == revisions.activity(session_id):
            headers.append(kept.activity)
        else:
            exported = activity.export_session(session_id, entries=actions)
            if exported is not None:
                headers.append(_activity_to_json(session_id, exported, actions))
    states: Dict[str, Any] = {}
    plans: Dict[str, Any] = {}
    expired: Dict[str, float] = {}
    for session_id in session_ids:
        kept = known_sessions.get(session_id)
        same_state = same_plan = False
        if kept is not None and revisions is not None and kept.clock_offset == offset:
            same_state = kept.state_revision == revisions.state(session_id)
            same_plan = kept.plan_revision == revisions.plan(session_id)
        state = kept.state if same_state and kept is not None else _state_json_of(session_states, session_id, to_wall)
        if state is not None:
            states[session_id] = state
        session_plan = kept.plan if same_plan and kept is not None else _plan_json_of(plan, session_id, to_wall)
        if session_plan is not None:
            plans[session_id] = session_plan
        at = offers.expired_unseen_at(session_id)
        if at is not None:
            expired[session_id] = at

    history = stores.offer_history.delivered(user_id, now)
    ledger = _memory(stores.ledger, InMemoryOfferLedger)
    return {
        "format": FORMAT,
        "user_id": user_id,
        "activity": headers,
        "session_states": states,
        "tick_plan": plans,
        "expired_unseen": expired,
        "offer_history": [] if history is None else [
            {"at": at, "session_id": sid} for at, sid in zip(history.times, history.sessions)
        ],
        "pending": known["pending"] if "pending" in known else _offers_to_json(
            user_offers.pending, "expires_at", earlier.get("pending")),
        "delivered": known["delivered"] if "delivered" in known else _offers_to_json(
            user_offers.delivered, "at", earlier.get("delivered")),
        "first_name": stores.first_names.get(user_id),
        "ledger": known["ledger"] if "ledger" in known else _ledger_to_json(ledger, user_id, earlier.get("ledger")),
    }


def kept_until(state: Mapping[str, Any], *, adoption_window_s: float) -> Optional[float]:
    """Until when (epoch seconds) ``state``, an ``export_user`` of one user, holds what outlives
    the user's sessions, so a store must keep it even after they are gone: each delivered offer
    counts towards the caps for a day (``offer_history``), and an offer's record, or a
    baseline, can be credited with an adoption for ``adoption_window_s`` after it (the longest
    ``adopted.within_s`` of the triggers). None if it holds nothing of the kind."""
    history = state.get("offer_history")
    times = [float(history[-1]["at"]) + DAY_S] if history else []  # oldest first
    ledger = state.get("ledger") or {}
    if adoption_window_s > 0:
        times += [float(record["fired_at"]) + adoption_window_s for record in ledger.get("records") or ()]
        times += [float(at) + adoption_window_s for at in (ledger.get("baselines") or {}).values()]
    return max(times) if times else None


def section_revisions(stores: Stores) -> Dict[str, int]:
    """The sections of ``export_user`` that only a write to one store changes, each with that
    store's ``revision``: a section exported at the revision the store still has is as it
    was (the offers are the costly part of an export, and seldom change)."""
    offers = _memory(stores.offers, InMemoryOfferStore).revision
    return {"pending": offers, "delivered": offers, "ledger": _memory(stores.ledger, InMemoryOfferLedger).revision}


class EarlierSection(NamedTuple):
    """A section of an earlier export (``export_user``'s ``earlier``), and the revision of its
    store then (``section_revisions``)."""

    value: Any
    revision: int


class KnownSession(NamedTuple):
    """One session's parts as ``export_user`` gave them (None: it had none), each with the
    revision it had then, and the clock offset the timers were turned to wall-clock with. A
    tuple, and kept whole while nothing of the session moved: a unit of work keeps one per
    session of its user."""

    clock_offset: float
    activity_revision: int
    activity: Optional[Mapping[str, Any]]  # exported without actions
    state_revision: int
    state: Optional[Mapping[str, Any]]
    plan_revision: int
    plan: Optional[Mapping[str, Any]]


class _SessionRevisions:
    """Where ``KnownSession``'s revisions come from, in stores made with ``revised=True``."""

    def __init__(self, stores: Stores) -> None:
        self.activity = _memory(stores.activity, InMemoryActivityStore).revision_of
        self.state = _memory(stores.session_states, RevisedSessionStateStore).revision_of
        self.plan = _memory(stores.tick_plan, RevisedTickSchedule).revision_of


def session_revisions(stores: Stores, state: Mapping[str, Any], *, clock_offset: float,
                      known: Optional[Mapping[str, KnownSession]] = None) -> Dict[str, KnownSession]:
    """Each session's parts of ``state``, an ``export_user`` (``actions=False``) of ``stores``
    just made with ``clock_offset``, with their revisions: ``known_sessions`` for the next export
    of the same stores. ``known``: the ``known_sessions`` that export was given; a session whose
    parts it gave back as they were keeps its entry."""
    revisions = _SessionRevisions(stores)
    headers = {header["session_id"]: header for header in state["activity"]}
    states, plans = state["session_states"], state["tick_plan"]
    known = known or {}
    sessions: Dict[str, KnownSession] = {}
    for session_id in headers.keys() | states.keys() | plans.keys():
        header, session_state, plan = headers.get(session_id), states.get(session_id), plans.get(session_id)
        kept = known.get(session_id)
        if kept is not None and kept.activity is header and kept.state is session_state and kept.plan is plan \
                and kept.clock_offset == clock_offset:
            sessions[session_id] = kept
        else:
            sessions[session_id] = KnownSession(
                clock_offset, revisions.activity(session_id), header, revisions.state(session_id), session_state,
                revisions.plan(session_id), plan)
    return sessions


def import_user(stores: Stores, state: Mapping[str, Any], *, now: float, clock_offset: Optional[float] = None) -> None:
    """Make ``stores`` hold for the state's user exactly what ``export_user`` read (see the
    module: it replaces what ``stores`` held for that user); ``now`` is the engine's wall
    clock (epoch seconds), ``clock_offset`` as ``export_user`` takes it."""
    if state.get("format") not in READABLE_FORMATS:
        raise ValueError(f"unknown user state format {state.get('format')!r}; this code reads {READABLE_FORMATS}")
    user_id = str(state["user_id"])
    activity = _memory(stores.activity, InMemoryActivityStore)
    offers = _memory(stores.offers, InMemoryOfferStore)
    plan = _memory(stores.tick_plan, TickSchedule)
    history = _memory(stores.offer_history, InMemoryOfferHistory)
    to_mono = _shift(SessionGate.clock() - now if clock_offset is None else -clock_offset)

    sessions = [_activity_from_json(s) for s in state["activity"]]
    for session_id, session in sessions:
        if session.user_id != user_id:
            raise ValueError(f"session {session_id!r} is user {session.user_id!r}'s, not {user_id!r}'s")
    user_offers = UserOffers(
        pending=tuple((Offer.from_dict(p["offer"]), float(p["expires_at"])) for p in state["pending"]),
        delivered=tuple((Offer.from_dict(d["offer"]), float(d["at"])) for d in state["delivered"]),
    )
    session_ids = _sessions_of([sid for sid, _ in sessions], user_offers)
    held = _sessions_of(activity.user_session_ids(user_id), offers.export_user(user_id))
    states: Mapping[str, Any] = state["session_states"]
    plans: Mapping[str, Any] = state["tick_plan"]
    expired: Mapping[str, Any] = state["expired_unseen"]
    named = set(session_ids) | set(states) | set(plans) | set(expired)

    for session_id in held:
        if session_id not in named:  # the user's session this state does not have: gone
            if activity.user_of(session_id) == user_id:
                activity.remove_session(session_id)
            stores.session_states.delete(session_id)
            plan.forget(session_id)
            offers.clear_expired(session_id)
    for session_id, session in sessions:  # first: observers plan a look, the plan below replaces it
        activity.import_session(session_id, session, now=now)
    for session_id in sorted(named):
        if session_id in states:
            stores.session_states.save(_state_from_json(states[session_id], to_mono))
        else:
            stores.session_states.delete(session_id)
        plan.import_session(session_id, _plan_from_json(plans[session_id], to_mono) if session_id in plans else None)
        if session_id in expired:
            offers.mark_expired_unseen(session_id, float(expired[session_id]))
        else:
            offers.clear_expired(session_id)

    history.import_user(user_id, [(float(h["at"]), str(h["session_id"])) for h in state["offer_history"]])
    offers.import_user(user_id, user_offers)
    first_name = state.get("first_name")
    if first_name is not None:
        stores.first_names.set(user_id, str(first_name))
    else:
        _memory(stores.first_names, InMemoryFirstNames).forget(user_id)
    ledger: Mapping[str, Any] = state["ledger"]
    _memory(stores.ledger, InMemoryOfferLedger).import_user(user_id, UserLedger(
        records=tuple(OfferRecord.from_dict(r) for r in ledger["records"]),
        latest={str(t): str(o) for t, o in ledger["latest"].items()},
        baselines={str(t): float(at) for t, at in ledger["baselines"].items()},
    ))


@dataclass(frozen=True)
class SessionRows:
    """One session's actions as ``export_user`` writes them, made only when asked: a unit of
    work that appends to what a store holds needs the new rows only."""

    session_id: str
    stored: StoredSession

    def __len__(self) -> int:
        return len(self.stored.entries)

    def sequence_number(self, position: int) -> int:
        return int(self.stored.entries[position][ROW_INDEX])

    def sequence_numbers(self, start: int = 0) -> List[int]:
        """The rows' sequence numbers from the ``start``-th on."""
        return [entry[ROW_INDEX] for entry in self.stored.entries[start:]]

    def rows(self, start: int = 0) -> List[List[Any]]:
        """The rows from the ``start``-th action on (see ``_activity_to_json``)."""
        session_id, user_id = self.session_id, self.stored.user_id
        return [
            [timestamp, index, event_id, title, description, canonical_url, type_, timestamp_end,
             None if raw_url == canonical_url else raw_url,
             None if action_session == session_id else action_session,
             None if action_user == user_id else action_user,
             email, conversation_id]
            for (timestamp, index, event_id, title, description, canonical_url, type_, timestamp_end, raw_url,
                 action_session, action_user, email, conversation_id) in self.stored.entries[start:]
        ]


def session_rows(stores: Stores, session_id: str) -> Optional[SessionRows]:
    stored = _memory(stores.activity, InMemoryActivityStore).export_session(session_id)
    return None if stored is None else SessionRows(session_id, stored)


def join_actions(state: Mapping[str, Any], rows: Mapping[str, Sequence[Any]]) -> Dict[str, Any]:
    """A document exported with ``actions=False`` made whole again: each session's rows
    (none if not given) back in it. A session that carries its rows (a document written
    whole) keeps them."""
    return {**state, "activity": [
        session if "actions" in session else {**session, "actions": list(rows.get(str(session["session_id"]), ()))}
        for session in state.get("activity", ())
    ]}


# -- the parts ------------------------------------------------------------------------------


def _memory(store: object, kind: Type[T]) -> T:
    if not isinstance(store, kind):
        raise TypeError(f"a user's state moves between in-memory stores: expected {kind.__name__}, got {type(store).__name__}")
    return store


def _shift(offset: float) -> Convert:
    return lambda t: t + offset


def _sessions_of(activity_sessions: Sequence[str], offers: UserOffers) -> List[str]:
    """The sessions a user's state speaks for: the activity's, then those of offers only."""
    sessions = list(activity_sessions)
    seen: Set[str] = set(sessions)
    for offer, _ in (*offers.pending, *offers.delivered):
        if offer.session_id not in seen:
            seen.add(offer.session_id)
            sessions.append(offer.session_id)
    return sessions


def _activity_to_json(session_id: str, session: StoredSession, actions: bool) -> Dict[str, Any]:
    """Each action as a row, not an object: a document carries hundreds of actions, and no key
    names repeat in each. A row is the stored entry (``ENTRY_FIELDS``), but ``raw_url``,
    ``session_id`` and ``user_id`` are null when they are the ``canonical_url``, the session's
    and its user's. The event ids seen are the rows' (format 2 listed them apart too)."""
    exported: Dict[str, Any] = {"session_id": session_id, "user_id": session.user_id, "last_seen": session.last_seen}
    if actions:
        exported["actions"] = SessionRows(session_id, session).rows()
    return exported


def _activity_from_json(data: Mapping[str, Any]) -> Tuple[str, SessionActivity]:
    session_id, user_id = str(data["session_id"]), str(data["user_id"])
    actions = []
    for row in data["actions"]:
        if isinstance(row, dict):  # format 1
            action = SlimAction(**{name: row[name] for name in _ACTION_FIELDS if name in row})
            event_id = row.get("event_id")
        else:  # a list (JSON has no tuples)
            (timestamp_start, index, event_id, title, description, canonical_url, type_, timestamp_end, raw_url,
             action_session, action_user, email, conversation_id) = row
            action = SlimAction(
                title=title, description=description, canonical_url=canonical_url, index=index, type=type_,
                timestamp_start=timestamp_start, timestamp_end=timestamp_end,
                raw_url=canonical_url if raw_url is None else raw_url,
                session_id=session_id if action_session is None else action_session,
                user_id=user_id if action_user is None else action_user,
                email=email, conversation_id=conversation_id,
            )
        actions.append((action, None if event_id is None else str(event_id)))
    seen = data.get("event_ids")  # formats 1 and 2 list them; later, the rows' ids are they
    event_ids = (e for _, e in actions if e is not None) if seen is None else (str(e) for e in seen)
    return session_id, SessionActivity(
        user_id=user_id,
        last_seen=float(data["last_seen"]),
        actions=tuple(actions),
        event_ids=frozenset(event_ids),
    )


def _offers_to_json(entries: Sequence[Tuple[Offer, float]], time_key: str,
                    earlier: Optional[EarlierSection]) -> List[Mapping[str, Any]]:
    """Parked or delivered offers with their times, reusing ``earlier``'s item for the same
    offer at the same time: an offer is immutable, and its id is made once."""
    kept = {(item["offer"]["offer_id"], item[time_key]): item for item in earlier.value} if earlier else {}
    return [kept.get((offer.offer_id, at)) or {"offer": offer.to_stored_dict(), time_key: at} for offer, at in entries]


def _ledger_to_json(ledger: InMemoryOfferLedger, user_id: str, earlier: Optional[EarlierSection]) -> Dict[str, Any]:
    """The user's part of the ledger (``UserLedger``'s fields), reusing ``earlier``'s record for
    each record not written since."""
    kept = {record["offer_id"]: record for record in earlier.value["records"]} if earlier else {}
    since = earlier.revision if earlier else 0
    written = ledger.written(user_id)
    return {
        "records": [kept[record.offer_id] if at <= since and record.offer_id in kept else record.to_dict()
                    for record, at in written],
        "latest": ledger.latest_of(user_id, [record for record, _ in written]),
        "baselines": ledger.baselines_of(user_id),
    }


def _state_to_json(state: SessionState, to_wall: Convert) -> Dict[str, Any]:
    """A snapshot: ``to_dict`` hands out the live ``metadata``, which the gate changes in
    place (the last offer, the evidence consumed, the active tour, the caps refusal logged),
    so it is copied."""
    exported = _converted(state.to_dict(), to_wall)
    exported["metadata"] = _json_copy(exported["metadata"])
    return exported


def _json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value


def _state_from_json(data: Mapping[str, Any], to_mono: Convert) -> SessionState:
    return SessionState.from_dict(_converted(data, to_mono))


def _converted(data: Mapping[str, Any], convert: Convert) -> Dict[str, Any]:
    """``data`` with its monotonic timers converted; only the dicts on their paths are copied
    (the rest is shared with ``data``, which is left as it was)."""
    converted = dict(data)
    for path in MONOTONIC_FIELDS:
        parent = converted
        for key in path[:-1]:
            parent[key] = dict(parent[key])
            parent = parent[key]
        parent[path[-1]] = convert(float(parent[path[-1]]))
    return converted


def _state_json_of(store: InMemorySessionStateStore, session_id: str, to_wall: Convert) -> Optional[Dict[str, Any]]:
    state = store.peek(session_id)
    return None if state is None else _state_to_json(state, to_wall)


def _plan_json_of(schedule: TickSchedule, session_id: str, to_wall: Convert) -> Optional[Dict[str, Any]]:
    plan = schedule.export_session(session_id)
    return None if plan is None else _plan_to_json(plan, to_wall)


def _plan_to_json(plan: SessionPlan, to_wall: Convert) -> Dict[str, Any]:
    watch = plan.watch_until
    return {
        "next_tick": plan.next_tick,
        "wake_at": plan.wake_at,
        "watched": watch is not None,
        "watch_until": None if watch is None or watch == NOW else to_wall(watch),
    }


def _plan_from_json(data: Mapping[str, Any], to_mono: Convert) -> SessionPlan:
    wake_at, watch_until = data.get("wake_at"), data.get("watch_until")
    watch: Optional[float] = None
    if data.get("watched"):
        watch = NOW if watch_until is None else to_mono(float(watch_until))
    return SessionPlan(
        next_tick=bool(data.get("next_tick")),
        wake_at=None if wake_at is None else float(wake_at),
        watch_until=watch,
    )

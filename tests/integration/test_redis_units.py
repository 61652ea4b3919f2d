"""The engine as units of work on a real redis-server: two replicas (two ``UserUnits`` over one
Redis, in this process) share each user's state; a race on the third save makes one offer;
a restarted replica keeps cooldowns, caps and pending offers; counts land once; a replica
reuses the bundle it keeps only while nobody changed the user, and writes only the rows that
changed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from typing import Any, AsyncIterator, Dict, List

import pytest
import redis

from addons.config import ProactiveConfig, load_config
from addons.insights.metrics import OfferMetrics
from addons.insights.records import day_of
from addons.offers.ingest import NormalisedBatch, normalise_batch, parse_capture_payload
from addons.stores.protocols import DAY_S
from addons.stores.redis.offers import session_ttl_s
from addons.stores.redis import units as units_module
from addons.stores.redis.units import RECORDS_PER_USER, UserUnits
from addons.stores.redis.user_states import FIRST_NAME_TTL_S, Commit, LoadedState, RedisUserStates, RowsChange
from posthog_events import posthog_event
from rasa_server import BOT
from redis_server import RedisServer

CONFIG = load_config(BOT / "proactive.yml")
TRIGGER = "bulk_edit_opportunity"



class Replica:
    """One replica's view, as the runtime builds it for ``config`` (``store: redis``): its own
    connection, its own metrics."""

    def __init__(self, server: RedisServer, config: ProactiveConfig = CONFIG) -> None:
        self.client = redis.asyncio.Redis(port=server.port, decode_responses=True)
        self.metrics = OfferMetrics([TRIGGER])
        self.states = RedisUserStates(self.client, ttl_s=session_ttl_s(config))
        self.units = UserUnits(config, self.states, counters=self.metrics)

    def fired(self) -> float:
        return self.metrics.stages_total.labels(TRIGGER, "fired")._value.get()

    async def close(self) -> None:
        await self.units.close()
        await self.client.close()


@pytest.fixture
async def cluster(redis_server: RedisServer):
    redis.Redis(port=redis_server.port).flushdb()
    replicas = [Replica(redis_server), Replica(redis_server)]
    yield replicas
    for replica in replicas:
        await replica.close()


def saves(user: str, at: float, count: int, first: int = 0) -> NormalisedBatch:
    events: List[Dict[str, Any]] = [
        posthog_event("$autocapture", ts=at - 10 + n, text="Save changes", user=user, session=f"s-{user}")
        for n in range(first, first + count)
    ]
    return normalise_batch(parse_capture_payload({"api_key": "k", "batch": events}), received_at=at)


async def test_two_saves_on_one_replica_and_the_third_on_the_other_make_the_offer(cluster):
    a, b = cluster
    now = time.time()
    first = await a.units.run("ada", lambda e: e.ingest(saves("ada", now, 2), now=now), now=now, min_streams=1)
    assert first.value == [] and first.published == []
    third = await b.units.run("ada", lambda e: e.ingest(saves("ada", now, 1, first=2), now=now), now=now, min_streams=1)
    assert [o.trigger_id for o in third.published] == [TRIGGER]
    assert (a.fired(), b.fired()) == (0, 1)


async def test_the_third_save_on_two_replicas_at_once_makes_exactly_one_offer_200_times(cluster, caplog):
    caplog.set_level(logging.INFO)
    a, b = cluster
    now = time.time()
    attempts = []
    for n in range(200):
        user = f"race-{n}"
        await a.units.run(user, lambda e: e.ingest(saves(user, now, 2), now=now), now=now, min_streams=1)
        third = saves(user, now, 1, first=2)  # the same event (same uuid) reaches both replicas
        results = await asyncio.gather(
            a.units.run(user, lambda e: e.ingest(third, now=now), now=now, min_streams=1),
            b.units.run(user, lambda e: e.ingest(third, now=now), now=now, min_streams=1),
        )
        assert sum(len(r.published) for r in results) == 1, n
        attempts.append(max(r.attempts for r in results))
    assert a.fired() + b.fired() == 200  # the race's loser counted nothing
    counts = await a.states.counts(day_of(now), TRIGGER)
    assert counts["stage:fired"] == 200 and counts["stage:delivered"] == 200
    # The loser of each race fired too, then lost the commit: its lines were never logged.
    firing = [r for r in caplog.records if r.getMessage().startswith("proactive trigger firing")]
    assert len(firing) == 200
    print(f"\nraces that needed a retry: {sum(1 for n in attempts if n > 1)} of 200")


async def test_a_restarted_replica_keeps_cooldowns_caps_and_pending_offers(cluster, redis_server):
    a, _ = cluster
    now = time.time()
    made = await a.units.run("bo", lambda e: e.ingest(saves("bo", now, 3), now=now), now=now, min_streams=1)
    assert len(made.published) == 1
    parked = await a.units.run("cy", lambda e: e.ingest(saves("cy", now, 3), now=now), now=now)
    assert parked.published == [] and len(parked.value) == 1  # fired, waiting for a tab

    restarted = Replica(redis_server)  # a new process: nothing but Redis carries over
    try:
        later = now + 1
        again = await restarted.units.run("bo", lambda e: e.ingest(saves("bo", later, 3, first=3), now=later),
                                          now=later, min_streams=1)
        assert again.published == []  # still PROACTIVE, then cooling down: no second toast
        verdict = await restarted.units.run("bo", lambda e: e.gate.check("s-bo").reason, now=later)
        assert verdict.value == "v2_state_proactive_assistance"
        opened = await restarted.units.run("cy", lambda e: e.subscribe("cy", now=later), now=later, min_streams=1)
        assert [o.offer_id for o in opened.published] == [parked.value[0].offer_id]
    finally:
        await restarted.close()


async def test_the_user_is_due_at_the_next_tick_then_when_the_offer_times_out(cluster):
    a, b = cluster
    now = time.time()
    await a.units.run("di", lambda e: e.ingest(saves("di", now, 3), now=now), now=now, min_streams=1)
    assert await b.states.claim_due(now) == ["di"]  # new activity: looked at by the next tick, on any replica
    await b.units.run("di", lambda e: e.tick(now=now), now=now)
    timeout = CONFIG.session.interaction_timeout_s
    assert await a.states.claim_due(now + timeout - 1) == []
    assert await a.states.claim_due(now + timeout + 1) == ["di"]  # the toast's engagement window ends


class CountingStates(RedisUserStates):
    """Counts the round trips: loads and commit batches."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.loads: List[int] = []
        self.commits: List[int] = []
        self.loaded: List[LoadedState] = []
        self.row_changes: List[Dict[str, RowsChange]] = []
        self.messages: List[str] = []

    async def load_many(self, user_ids, held=None):  # type: ignore[no-untyped-def]
        self.loads.append(len(user_ids))
        loaded = await super().load_many(user_ids, held)
        self.loaded += loaded
        return loaded

    async def commit_many(self, commits):  # type: ignore[no-untyped-def]
        self.commits.append(len(commits))
        self.row_changes += [commit.rows for _, commit in commits]
        self.messages += [m for _, commit in commits for m in commit.messages]
        return await super().commit_many(commits)


@pytest.fixture
async def counted(cluster):
    """Replica A's units over states that count what crosses to Redis; closed after."""
    states = CountingStates(cluster[0].client)
    units = UserUnits(CONFIG, states, counters=cluster[0].metrics)
    yield states, units
    await units.close()


async def test_concurrent_units_share_round_trips_and_each_user_s_run_in_order(counted):
    states, units = counted
    now = time.time()
    users = [f"batch-{n}" for n in range(10)]
    # Five units per user at once: each adds one save; the third makes the offer.
    runs = [units.run(user, lambda e, user=user, k=k: e.ingest(saves(user, now, 1, first=k), now=now), now=now,
                      min_streams=1)
            for k in range(5) for user in users]
    results = await asyncio.gather(*runs)
    assert all(r.attempts == 1 for r in results)  # one replica's units never race each other
    assert len(states.loads) < len(runs) / 4, states.loads  # 50 units in a few batches
    assert sum(states.loads) == sum(states.commits)
    for user in users:
        loaded = await states.load(user)
        assert loaded.version >= 1
        assert sum(len(rows) for rows in loaded.rows.values()) == 5  # no unit's save was lost
        assert len(loaded.state["delivered"]) == 1  # one offer each, made by the third save


async def test_a_unit_that_raises_fails_alone_and_its_user_s_other_units_still_land(cluster):
    a, _ = cluster
    now = time.time()

    def broken(engine: Any) -> None:
        raise RuntimeError("a bug in one operation")

    first = a.units.run("eve", lambda e: e.ingest(saves("eve", now, 1), now=now), now=now)
    failing = a.units.run("eve", broken, now=now)
    second = a.units.run("eve", lambda e: e.ingest(saves("eve", now, 1, first=1), now=now), now=now)
    done = await asyncio.gather(first, failing, second, return_exceptions=True)
    assert isinstance(done[1], RuntimeError)
    assert not isinstance(done[0], BaseException) and not isinstance(done[2], BaseException)
    loaded = await a.states.load("eve")
    assert sum(len(rows) for rows in loaded.rows.values()) == 2


async def test_a_caller_that_went_away_leaves_the_others_served(cluster):
    a, _ = cluster
    now = time.time()
    gone = asyncio.ensure_future(a.units.run("fay", lambda e: e.ingest(saves("fay", now, 1), now=now), now=now))
    kept = asyncio.ensure_future(a.units.run("gus", lambda e: e.ingest(saves("gus", now, 1), now=now), now=now))
    gone.cancel()
    assert (await kept).attempts == 1
    assert gone.cancelled()
    assert (await a.states.load("fay")).state is None  # cancelled before its batch: never ran


def _sequence_numbers(loaded: LoadedState) -> List[int]:
    return [row[1] for rows in loaded.rows.values() for row in rows]


async def test_a_replica_reuses_its_bundle_only_while_nobody_else_changed_the_user(cluster, counted):
    a, b = cluster
    states, units = counted
    now = time.time()
    await units.run("ivy", lambda e: e.ingest(saves("ivy", now, 1), now=now), now=now)
    await units.run("ivy", lambda e: e.ingest(saves("ivy", now, 1, first=1), now=now), now=now)
    assert [x.current for x in states.loaded] == [False, True]  # the second load sent nothing back
    assert units.cached_users() == 1
    # Another replica makes the offer: the kept bundle is stale, and is not used.
    await b.units.run("ivy", lambda e: e.ingest(saves("ivy", now, 1, first=2), now=now), now=now)
    made = await units.run("ivy", lambda e: e.ingest(saves("ivy", now, 1, first=3), now=now), now=now)
    assert states.loaded[-1].current is False
    assert made.published == []  # B's offer is seen: the gate is closed, no second offer
    assert a.fired() + b.fired() == 1
    assert len(_sequence_numbers(await states.load("ivy"))) == 4


async def test_a_commit_appends_the_new_rows_and_a_late_action_writes_the_list_anew(cluster, counted):
    a, _ = cluster
    states, units = counted
    now = time.time()
    for k in range(30):
        await units.run("jo", lambda e, k=k: e.ingest(saves("jo", now, 1, first=k), now=now), now=now)
    assert [list(changes) for changes in states.row_changes] == [["s-jo"]] * 30
    assert all(len(c["s-jo"].append) == 1 and not c["s-jo"].replace and c["s-jo"].trim == 0
               for c in states.row_changes)  # each commit sent its one new row, not the session
    late = normalise_batch(parse_capture_payload({"api_key": "k", "batch": [
        posthog_event("$autocapture", ts=now - 60, text="Edit", user="jo", session="s-jo")]}), received_at=now)
    await units.run("jo", lambda e: e.ingest(late, now=now), now=now)
    assert states.row_changes[-1]["s-jo"].trim == 30 and len(states.row_changes[-1]["s-jo"].append) == 31
    stored = await states.load("jo")
    times = [row[0] for row in stored.rows["s-jo"]]
    assert times == sorted(times) and len(times) == 31  # by timestamp, the late one first
    # A replica with nothing kept reads the same user whole, rows and all.
    fresh = UserUnits(CONFIG, RedisUserStates(a.client), counters=a.metrics)
    seen = await fresh.run("jo", lambda e: len(e.activity.recent_actions("s-jo")), now=now)
    assert seen.value == 31
    await fresh.close()


async def test_a_unit_reads_and_writes_the_rows_of_the_sessions_it_touched_only(cluster, counted, monkeypatch):
    a, _ = cluster
    states, units = counted
    now = time.time()
    read: List[str] = []
    real_rows = units_module.session_rows
    monkeypatch.setattr(units_module, "session_rows", lambda stores, sid: read.append(sid) or real_rows(stores, sid))

    def click(session: str, k: int, at: float = now) -> Any:
        batch = normalise_batch(parse_capture_payload({"api_key": "k", "batch": [
            posthog_event("$autocapture", ts=at - 100 + k, text="Edit", user="kim", session=session)]}), received_at=at)
        return lambda e: e.ingest(batch, now=at)

    for k, session in enumerate(["s1", "s2", "s3"] * 3 + ["s2"]):
        read.clear()
        await units.run("kim", click(session, k), now=now)
        assert read == [session]  # not the user's other sessions, however many
        assert list(states.row_changes[-1]) == [session]
    stored = await states.load("kim")
    assert {session: len(rows) for session, rows in stored.rows.items()} == {"s1": 3, "s2": 4, "s3": 3}
    # A session the unit did not touch but that went (idle eviction) loses its list too.
    later = now + CONFIG.activity.idle_session_s + 1
    await units.run("kim", click("s4", 0, at=later), now=later)
    await units.run("kim", lambda e: e.tick(now=later), now=later)
    stored = await states.load("kim")
    assert {session: len(rows) for session, rows in stored.rows.items()} == {"s4": 1}
    # What a replica with nothing kept reads is what the kept bundle holds.
    fresh = UserUnits(CONFIG, RedisUserStates(a.client), counters=a.metrics)
    seen = await fresh.run("kim", lambda e: [len(e.activity.recent_actions(s)) for s in ("s1", "s4")], now=later)
    assert seen.value == [0, 1]
    await fresh.close()


async def test_a_unit_that_raises_drops_the_kept_bundle(counted):
    states, units = counted
    now = time.time()
    await units.run("kai", lambda e: e.ingest(saves("kai", now, 1), now=now), now=now)

    def half_done(engine: Any) -> None:
        engine.ingest(saves("kai", now, 1, first=1), now=now)  # changes the bundle, then fails
        raise RuntimeError("a bug half-way")

    with pytest.raises(RuntimeError):
        await units.run("kai", half_done, now=now)
    assert units.cached_users() == 0
    seen = await units.run("kai", lambda e: len(e.activity.recent_actions("s-kai")), now=now)
    assert states.loaded[-1].current is False and seen.value == 1  # the half-done save never landed


async def test_a_state_written_whole_by_an_earlier_version_is_read_and_its_rows_moved_apart(cluster):
    a, _ = cluster
    now = time.time()
    old = UserUnits(CONFIG, a.states, counters=a.metrics)
    await old.run("lee", lambda e: e.ingest(saves("lee", now, 2), now=now), now=now)
    loaded = await a.states.load("lee")
    whole = {**loaded.state, "activity": [{**s, "actions": loaded.rows[s["session_id"]]}
                                          for s in loaded.state["activity"]]}
    client = redis.Redis(port=a.client.connection_pool.connection_kwargs["port"], decode_responses=True)
    client.delete("proactive:{u:lee}:actions:s-lee", "proactive:{u:lee}:sessions")
    assert await a.states.commit(await a.states.load("lee"), Commit(state=whole))  # as format 2 kept it
    units = UserUnits(CONFIG, a.states, counters=a.metrics)
    seen = await units.run("lee", lambda e: e.ingest(saves("lee", now, 1, first=2), now=now), now=now)
    assert len(seen.value) == 1  # the two saves it read and the third: the offer
    stored = await a.states.load("lee")
    assert all("actions" not in s for s in stored.state["activity"]) and len(stored.rows["s-lee"]) == 3
    await old.close()
    await units.close()


async def test_an_offer_parked_for_want_of_a_tab_is_announced_once(counted):
    states, units = counted
    now = time.time()
    await units.run("max", lambda e: e.ingest(saves("max", now, 3), now=now), now=now)
    for k in range(3, 6):  # more events while it waits: no new announcement
        await units.run("max", lambda e, k=k: e.ingest(saves("max", now, 1, first=k), now=now), now=now)
    assert [json.loads(message) for message in states.messages] == [{"pending_for": "max"}]


@contextlib.asynccontextmanager
async def units_on(server: RedisServer, config: ProactiveConfig) -> AsyncIterator[UserUnits]:
    """A ``Replica``'s units, closed after."""
    replica = Replica(server, config)
    try:
        yield replica.units
    finally:
        await replica.close()


def with_caps(**caps: Any) -> ProactiveConfig:
    return dataclasses.replace(CONFIG, caps=dataclasses.replace(CONFIG.caps, **caps))


async def test_a_user_s_keys_outlive_their_sessions_for_as_long_as_the_caps_count_an_offer(redis_server):
    """The keys of a user with no offer expire with the sessions (``session_ttl_s``); an offer
    counts towards the daily cap for 24 h, so its user's keys are kept that long: a new session
    after every session was evicted, on a restarted replica, is still capped."""
    config = with_caps(per_user_per_day=1)
    sync = redis.Redis(port=redis_server.port, decode_responses=True)
    sync.flushdb()
    now = time.time()
    async with units_on(redis_server, config) as units:
        made = await units.run("eve", lambda e: e.ingest(saves("eve", now, 3), now=now), now=now, min_streams=1)
        assert len(made.published) == 1
        await units.run("fay", lambda e: e.ingest(saves("fay", now, 2), now=now), now=now, min_streams=1)
        assert 0 < sync.ttl("proactive:{u:fay}:state") <= session_ttl_s(config)
        for key in ("state", "ver", "sessions", "actions:s-eve"):
            assert sync.ttl(f"proactive:{{u:eve}}:{key}") > DAY_S - 60, key

        later = now + config.activity.idle_session_s + 1
        evicted = await units.run("eve", lambda e: e.tick(now=later), now=later)
        assert evicted.value.evicted == 1
        remaining = sync.ttl("proactive:{u:eve}:state")
        assert remaining > session_ttl_s(config) and remaining > DAY_S - (later - now) - 60

    async with units_on(redis_server, config) as units:  # a restarted replica: nothing but Redis carries over
        back = later + 60
        again = await units.run("eve", lambda e: e.ingest(saves("eve", back, 3), now=back), now=back, min_streams=1)
        assert again.published == []
        verdict = await units.run("eve", lambda e: e.caps.check("eve", "s-eve", back).reason, now=back)
        assert verdict.value.startswith("daily cap")


async def test_a_user_s_document_keeps_their_newest_offer_records_only(redis_server):
    """The document carries the user's offer records for as long as Redis keeps it (a day
    after their last offer): it keeps the newest ``RECORDS_PER_USER`` of them."""
    sync = redis.Redis(port=redis_server.port, decode_responses=True)
    sync.flushdb()
    now = time.time()
    offers = RECORDS_PER_USER + 5
    async with units_on(redis_server, with_caps(per_user_per_day=10**6)) as units:
        for n in range(offers):
            at = now + n
            events = [posthog_event("$autocapture", ts=at - 3 + k, text="Save changes", user="gus", session=f"s{n}")
                      for k in range(3)]
            batch = normalise_batch(parse_capture_payload({"api_key": "k", "batch": events}), received_at=at)
            made = await units.run("gus", lambda e, b=batch, t=at: e.ingest(b, now=t), now=at, min_streams=1)
            assert len(made.published) == 1, n
    records = json.loads(sync.get("proactive:{u:gus}:state"))["ledger"]
    assert len(records["records"]) == RECORDS_PER_USER
    assert [r["session_id"] for r in records["records"]] == [f"s{n}" for n in range(offers - RECORDS_PER_USER, offers)]
    assert records["latest"] == {TRIGGER: records["records"][-1]["offer_id"]}


async def test_a_capped_session_logs_its_refusal_once_whichever_replica_runs_its_events(redis_server, caplog):
    """The caps' refusal is logged once per session and kind (README, "Frequency caps"), also
    when every event of the session lands on another replica than the one before."""
    caplog.set_level(logging.INFO)
    redis.Redis(port=redis_server.port).flushdb()
    config = with_caps(per_user_per_day=1)
    now = time.time()
    async with units_on(redis_server, config) as a, units_on(redis_server, config) as b:
        await a.run("hal", lambda e: e.ingest(saves("hal", now, 3), now=now), now=now, min_streams=1)
        for n in range(6):  # a second session, its saves alternating between the replicas
            at = now + 10 + n
            events = [posthog_event("$autocapture", ts=at, text="Save changes", user="hal", session="s-hal-2")]
            batch = normalise_batch(parse_capture_payload({"api_key": "k", "batch": events}), received_at=at)
            made = await (a, b)[n % 2].run("hal", lambda e, events=batch, t=at: e.ingest(events, now=t), now=at,
                                           min_streams=1)
            assert made.published == []
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("proactive offer suppressed")]
    assert len(refusals) == 1 and "session=s-hal-2 reason=daily cap" in refusals[0], refusals


async def test_a_user_s_first_name_outlives_the_document_that_went_with_their_sessions(redis_server):
    """PostHog sends the name with ``identify``, often once per login; one process keeps it while
    it runs. In Redis it outlives the user's document, which expires with the sessions."""
    sync = redis.Redis(port=redis_server.port, decode_responses=True)
    sync.flushdb()
    now = time.time()
    identify = posthog_event("$identify", ts=now - 5, user="ida", session="s-ida", **{"$set": {"first_name": "Ida"}})
    batch = normalise_batch(parse_capture_payload({"api_key": "k", "batch": [identify]}), received_at=now)
    async with units_on(redis_server, CONFIG) as units:
        await units.run("ida", lambda e: e.ingest(batch, now=now), now=now)
        await units.run("ida", lambda e: e.ingest(saves("ida", now, 1), now=now), now=now)
    assert FIRST_NAME_TTL_S - 60 < sync.ttl("proactive:{u:ida}:name") <= FIRST_NAME_TTL_S
    assert sync.ttl("proactive:{u:ida}:state") <= session_ttl_s(CONFIG)
    expiring = [key for key in sync.keys("proactive:{u:ida}:*") if not key.endswith(":name")]
    assert len(expiring) == 4  # the document, its version, the sessions and one session's actions
    sync.delete(*expiring)  # what expiry does an idle hour later: all but the name

    later = now + 3 * 3600
    async with units_on(redis_server, CONFIG) as units:  # a restarted replica
        await units.run("ida", lambda e: e.ingest(saves("ida", later, 1), now=later), now=later)
        named = await units.run("ida", lambda e: e.stores.first_names.get("ida"), now=later)
    assert named.value == "Ida"
    assert json.loads(sync.get("proactive:{u:ida}:state"))["first_name"] == "Ida"

"""Each user's state in Redis as one versioned document and its sessions' action rows
(docs/design/cluster.md, "unit of work per user"): one script loads them, another commits them
only if nobody committed since. Both take many users in one round trip (a unit-of-work batch,
``addons.stores.redis.units``).

Keys, all of one user's under the hash tag ``{u:<user>}``:

* ``proactive:{u:U}:ver``: the version, which every commit takes new from one counter
  (``proactive:versions``, started at the current microsecond whenever Redis has none), so a
  version is never seen twice: not after the user's keys expired, nor after Redis lost its
  data. A replica that holds the state of a version may skip loading it.
* ``proactive:{u:U}:state``: the JSON document (``addons.stores.user_state``), without the
  action rows.
* ``proactive:{u:U}:actions:<session>``: a list, one JSON row per action of the session. A
  commit appends the new rows and drops the oldest ones trimmed, or, when actions moved (an
  older event arrived late), writes the list anew; so a commit's size follows what the unit
  changed, not the user's history.
* ``proactive:{u:U}:sessions``: the sessions that have such a list (the load script reads them
  from there).
* ``proactive:{u:U}:name``: the user's first name, also in the document, kept apart for
  ``FIRST_NAME_TTL_S`` after the last commit that had it: PostHog sends it with ``identify``,
  often once per login, and one process keeps it while it runs, so it must outlive the
  document, which goes with the sessions. A load that finds no document gives it back.

All of them expire ``ttl_s`` after the last commit, so an idle user's state goes the way the
in-memory store's idle eviction would; or later, where the commit asks (``Commit.keep_s``):
what outlives the sessions, the caps' day of delivered offers and the records an adoption
may still be credited to, stays as long as the in-memory stores keep it.

Besides the user's keys, a commit writes the facts the whole cluster reads: the user's next
due time in ``proactive:due`` (the periodic pass claims due users from there, for a lease
that the pass's own commit ends), the replica that planned it in ``proactive:due:owners``
(that replica keeps the user's state, so its pass claims the user first) and the
insights' daily counts (``proactive:insights:<day>:<trigger>`` hashes). A commit that lost the
race writes nothing, so a retried operation never counts anything twice. Touching those shared
keys in the same script needs a single Redis (or Sentinel): in a Redis Cluster they live on
other shards.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import ujson
from redis.asyncio import Redis

from addons.stores.redis.client import Deadline
from addons.stores.redis.keys import (
    CHANNEL, DUE_KEY, DUE_OWNERS_KEY, LIVE_STREAMS_LUA, REPLICA_PREFIX, USER_KEYS_LUA, VERSIONS_KEY, insights_key,
)
from addons.stores.redis.outage import RedisOutage

PART = "the user states"  # in log lines and 503 messages

# JSON without spaces, as Redis keeps it. ujson (installed with Sanic) writes a small object
# in a third of the time of the stdlib's encoder, which sets itself up on every call; its
# floats read back as the same number, and it escapes non-ASCII as the stdlib does.
compact_json: Callable[[Any], str] = partial(ujson.dumps, ensure_ascii=True, escape_forward_slashes=False)
CLAIM_LEASE_S = 30.0  # a claimed user's pass commits (and plans the next) well within this
CLAIM_SCAN = 4  # a claim looks at this many due users per one it may take (others' wait for their replica)
FIRST_NAME_TTL_S = 30 * 86_400  # a user's first name outlives their last commit by this

# ARGV, per user: the user id and the version the caller holds ('' for none). Per user, a
# reply of: the version ('' for none), the document ('' for none, or when the caller holds
# that version), the streams open on live replicas, (session id, its rows) pairs (none
# when the caller holds that version), and the first name kept apart when there is no
# document ('' otherwise).
_LOAD = LIVE_STREAMS_LUA + USER_KEYS_LUA + """
local loaded = {}
for a = 1, #ARGV, 2 do
  local user = ARGV[a]
  local version = redis.call('GET', user_key(user, 'ver')) or ''
  local entry = {version, '', live_streams(presence_key(user)), {}, ''}
  if version == '' or version ~= ARGV[a + 1] then
    entry[2] = redis.call('GET', user_key(user, 'state')) or ''
    if entry[2] == '' then
      entry[5] = redis.call('GET', user_key(user, 'name')) or ''
    end
    local rows = {}
    for _, session in ipairs(redis.call('SMEMBERS', user_key(user, 'sessions'))) do
      rows[#rows + 1] = session
      rows[#rows + 1] = redis.call('LRANGE', user_key(user, 'actions:' .. session), 0, -1)
    end
    entry[4] = rows
  end
  loaded[#loaded + 1] = entry
end
return loaded
"""

# Every user of a batch in one call. KEYS: the due zset, the versions counter, the due owners.
# ARGV: ttl, insights ttl, channel, the committing replica ('' for none), then per user: its
# commit as JSON (``_commit_json``) and its document ('' deletes it). Per user, the new
# version, or -1 if the version was not the one expected (then nothing of that user is written).
_COMMIT = USER_KEYS_LUA + f"local name_ttl = {FIRST_NAME_TTL_S}\n" + """
local ttl, insights_ttl, channel, owner = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- A Redis that lost its data starts the counter past every version it gave before (the
  -- microseconds now): a replica's kept bundle must never match a version given anew.
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], now[1] .. string.format('%06d', tonumber(now[2])))
end
local results = {}
for a = 5, #ARGV, 2 do
  local commit, state = cjson.decode(ARGV[a]), ARGV[a + 1]
  local user_ttl = math.max(ttl, commit.keep)
  local version_key, state_key = user_key(commit.user, 'ver'), user_key(commit.user, 'state')
  local sessions_key, actions = user_key(commit.user, 'sessions'), user_key(commit.user, 'actions:')
  if tonumber(redis.call('GET', version_key) or '0') ~= commit.expect then
    results[#results + 1] = -1
  else
    local version = string.format('%d', redis.call('INCR', KEYS[2]))  -- not '%.14g', as Lua prints numbers
    if state == '' then
      redis.call('DEL', state_key)
    else
      redis.call('SET', state_key, state, 'EX', user_ttl)
    end
    redis.call('SET', version_key, version, 'EX', user_ttl)
    if commit.name ~= '' then
      redis.call('SET', user_key(commit.user, 'name'), commit.name, 'EX', name_ttl)
    end
    if commit.due == '' then
      redis.call('ZREM', KEYS[1], commit.user)
    else
      redis.call('ZADD', KEYS[1], commit.due, commit.user)
    end
    if commit.due == '' or owner == '' then  -- not due, or nobody's
      redis.call('HDEL', KEYS[3], commit.user)
    else
      redis.call('HSET', KEYS[3], commit.user, owner)
    end
    for _, count in ipairs(commit.counts) do  -- {hash, field, amount}
      redis.call('HINCRBY', count[1], count[2], count[3])
      redis.call('EXPIRE', count[1], insights_ttl)
    end
    for _, change in ipairs(commit.rows) do  -- {session, 'a' (trim, then append) or 'r' (replace), trim, rows}
      local session, rows = change[1], change[4]
      local list = actions .. session
      if change[2] == 'r' then
        redis.call('DEL', list)
      elseif change[3] > 0 then
        redis.call('LTRIM', list, change[3], -1)
      end
      for i = 1, #rows, 500 do  -- unpack has a limit on how many values it spreads
        redis.call('RPUSH', list, unpack(rows, i, math.min(i + 499, #rows)))
      end
      if redis.call('EXISTS', list) == 1 then
        redis.call('SADD', sessions_key, session)
      else
        redis.call('SREM', sessions_key, session)
      end
    end
    for _, session in ipairs(redis.call('SMEMBERS', sessions_key)) do
      redis.call('EXPIRE', actions .. session, user_ttl)
    end
    redis.call('EXPIRE', sessions_key, user_ttl)
    for _, message in ipairs(commit.messages) do
      redis.call('PUBLISH', channel, message)
    end
    results[#results + 1] = tonumber(version)
  end
end
return results
"""

# KEYS: due zset, due owners. ARGV: now, limit, when the lease ends, the claiming replica,
# the due time up to which another live replica's users are taken too. Claims the users due
# by now that are the replica's own, nobody's, a dead replica's, or due since long enough
# (their replica is alive but has not taken them): each is due again when the lease ends,
# unless the commit of its pass plans it first.
_CLAIM_DUE = f"""
local limit, others_by = tonumber(ARGV[2]), tonumber(ARGV[5])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, {CLAIM_SCAN} * limit)
local claimed = {{}}
for i = 1, #due, 2 do
  local user = due[i]
  local owner = redis.call('HGET', KEYS[2], user)
  if not owner or owner == ARGV[4] or tonumber(due[i + 1]) <= others_by
      or redis.call('EXISTS', '{REPLICA_PREFIX}' .. owner) == 0 then
    redis.call('ZADD', KEYS[1], ARGV[3], user)
    claimed[#claimed + 1] = user
    if #claimed == limit then
      break
    end
  end
end
return claimed
"""


# The longest a commit may ask for its user's keys to be kept (Redis refuses an expiry past
# about 9e15 s, and a script stopped there would have written part of its batch).
MAX_KEEP_S = 10 * 366 * 86_400


@dataclass(frozen=True)
class LoadedState:
    user_id: str
    version: int  # 0: nothing is kept for this user
    state: Optional[Dict[str, Any]]  # None: nothing is kept, or ``current``
    streams: int = 0  # the user's toast streams open on live replicas, read with the state
    rows: Dict[str, List[Any]] = field(default_factory=dict)  # session id → its action rows, oldest first
    current: bool = False  # the caller holds this version: neither document nor rows were sent
    first_name: Optional[str] = None  # kept apart (``:name``), given when there is no document


@dataclass(frozen=True)
class RowsChange:
    """How one session's list of action rows changes: its first ``trim`` rows dropped and
    ``append`` added at the end; with ``replace``, the list becomes ``append`` (none: it goes)."""

    append: Tuple[str, ...] = ()  # each a JSON row
    trim: int = 0
    replace: bool = False


@dataclass
class Commit:
    """What one unit of work writes: the user's new document and action rows, when the user
    is next due, and the insights counts it added ((day, trigger id, key) → amount)."""

    state: Union[Mapping[str, Any], str, None]  # the document, or its JSON text; None deletes it
    due_at: Optional[float] = None
    counts: Dict[Tuple[str, str, str], int] = field(default_factory=dict)
    messages: List[str] = field(default_factory=list)  # published on ``CHANNEL`` by the same script
    rows: Dict[str, RowsChange] = field(default_factory=dict)  # session id → how its rows change
    keep_s: float = 0.0  # keep the user's keys at least this long, if longer than the store's ``ttl_s``
    first_name: Optional[str] = None  # the user's, kept apart for ``FIRST_NAME_TTL_S``

    def check(self) -> None:
        """``ValueError`` for what the script cannot take. Checked before it runs: a script
        stopped half-way by a bad number would have written part of the commit (Redis does
        not roll scripts back)."""
        if self.due_at is not None and not math.isfinite(self.due_at):
            raise ValueError(f"due_at must be a finite time, got {self.due_at!r}")
        if not math.isfinite(self.keep_s):
            raise ValueError(f"keep_s must be a finite number of seconds, got {self.keep_s!r}")
        for where, amount in self.counts.items():
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise ValueError(f"count {where} must be a whole number, got {amount!r}")
        for session_id, change in self.rows.items():
            if isinstance(change.trim, bool) or not isinstance(change.trim, int) or change.trim < 0:
                raise ValueError(f"session {session_id!r}: rows to trim must be a whole number ≥ 0, got {change.trim!r}")


class RedisUserStates:
    def __init__(self, client: "Redis[str]", *, ttl_s: float = 86_400.0, insights_ttl_s: float = 90 * 86_400.0,
                 outage: Optional[RedisOutage] = None, replica_id: str = "") -> None:
        """``replica_id``: the replica this runs in (its heartbeat key names it), recorded as
        the owner of the users it commits, whose passes it then claims first; '' for none."""
        self._redis = client
        self._replica_id = replica_id
        self._outage = outage or RedisOutage()
        self._ttl_s = max(1, int(ttl_s))
        self._insights_ttl_s = max(1, int(insights_ttl_s))
        self._commit = client.register_script(_COMMIT)
        self._load = client.register_script(_LOAD)
        self._claim_due = client.register_script(_CLAIM_DUE)

    async def load(self, user_id: str) -> LoadedState:
        return (await self.load_many([user_id]))[0]

    async def load_many(self, user_ids: Sequence[str], held: Optional[Mapping[str, int]] = None) -> List[LoadedState]:
        """Each user's document, action rows, version and open streams, in one round trip.
        ``held``: user → the version the caller holds; a user still at it comes back
        ``current``, without document or rows."""
        held = held or {}
        args: List[str] = []
        for user_id in user_ids:
            version = held.get(user_id)
            args += [user_id, "" if version is None else str(version)]
        with self._outage.call(PART):
            async with Deadline():
                raw: List[Any] = await self._load(keys=[], args=args)
        loaded = []
        for user_id, (version, document, streams, rows, first_name) in zip(user_ids, raw):
            number = int(version or 0)
            loaded.append(LoadedState(
                user_id, number, json.loads(document) if document else None, int(streams),
                rows={rows[i]: json.loads("[" + ",".join(rows[i + 1]) + "]") for i in range(0, len(rows), 2)},
                current=bool(version) and held.get(user_id) == number, first_name=first_name or None,
            ))
        return loaded

    async def commit(self, loaded: LoadedState, commit: Commit) -> bool:
        """Writes ``commit`` if the user is still at ``loaded.version``; False if another
        unit of work committed first (then nothing was written)."""
        return (await self.commit_many([(loaded, commit)]))[0] is not None

    async def commit_many(self, commits: Sequence[Tuple[LoadedState, Commit]]) -> List[Optional[int]]:
        """Each user's commit as ``commit`` does it, all in one script call; each lands (its
        new version) or not (None) on its own."""
        if not commits:
            return []
        for _, commit in commits:
            commit.check()
        args: List[Any] = [self._ttl_s, self._insights_ttl_s, CHANNEL, self._replica_id]
        for loaded, commit in commits:
            args += [_commit_json(loaded, commit), _document(commit.state)]
        with self._outage.call(PART):
            async with Deadline():
                results: List[Any] = await self._commit(keys=[DUE_KEY, VERSIONS_KEY, DUE_OWNERS_KEY], args=args)
        return [int(result) if int(result) >= 0 else None for result in results]

    async def claim_due(self, now: float, limit: int = 1000, *, lease_s: float = CLAIM_LEASE_S,
                        others_after_s: float = 0.0) -> List[str]:
        """The users due by ``now``, each given to one caller across the cluster. A user whose
        pass does not commit within ``lease_s`` (its replica died) is due again then, for any.
        A user another live replica committed last is its replica's to claim (it keeps the
        state, which a pass elsewhere would make stale there) until ``others_after_s`` past
        its due time."""
        with self._outage.call(PART):
            claimed: List[str] = await self._claim_due(
                keys=[DUE_KEY, DUE_OWNERS_KEY],
                args=[repr(now), limit, repr(now + lease_s), self._replica_id, repr(now - others_after_s)],
            )
        return claimed

    async def reschedule(self, user_id: str, at: float) -> None:
        """A claimed user whose pass failed: due again at ``at``, for any replica (nobody's: a
        failure of this replica's own would otherwise keep the user here)."""
        with self._outage.call(PART):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(DUE_KEY, {user_id: at})
                pipe.hdel(DUE_OWNERS_KEY, user_id)
                await pipe.execute()

    async def counts(self, day: str, trigger_id: str) -> Dict[str, int]:
        with self._outage.call(PART):
            raw: Dict[str, str] = await self._redis.hgetall(insights_key(day, trigger_id))
        return {key: int(value) for key, value in raw.items()}


def _document(state: Union[Mapping[str, Any], str, None]) -> str:
    """The document as the commit script takes it: JSON text, '' for none."""
    if isinstance(state, str):
        return state
    return compact_json(state) if state else ""


def _commit_json(loaded: LoadedState, commit: Commit) -> str:
    """What the commit script reads of one user's commit besides the document: one JSON
    argument, not dozens (redis-py packs each argument in Python, about 1 µs apiece)."""
    user_id = loaded.user_id
    return compact_json({
        "expect": loaded.version,
        "user": user_id,
        "due": "" if commit.due_at is None else repr(commit.due_at),
        "counts": [[insights_key(day, trigger_id), key, amount] for (day, trigger_id, key), amount in commit.counts.items()],
        "rows": [[session_id, "r" if change.replace else "a", change.trim, list(change.append)]
                 for session_id, change in commit.rows.items()],
        "messages": commit.messages,
        "keep": min(MAX_KEEP_S, max(0, math.ceil(commit.keep_s))),
        "name": commit.first_name or "",
    })

"""Each user's state in Redis as one versioned document (docs/design/cluster.md, "unit of work
per user"): one script loads it, another commits it only if nobody committed since. Both take
many users in one round trip (a unit-of-work batch, ``addons.stores.redis.units``).

Keys, all of one user's under the hash tag ``{u:<user>}``:
``proactive:{u:U}:ver`` (the version) and ``proactive:{u:U}:state`` (the JSON document, from
``addons.stores.user_state.export_user``). Both expire ``ttl_s`` after the last commit, so an
idle user's state goes the way the in-memory store's idle eviction would.

Besides the document, a commit writes the facts the whole cluster reads: the user's next due
time in ``proactive:due`` (the periodic pass claims due users from there) and the insights'
daily counts (``proactive:insights:<day>:<trigger>`` hashes). A commit that lost the race writes
nothing, so a retried operation never counts anything twice. Touching those shared keys in the
same script needs a single Redis (or Sentinel): in a Redis Cluster they live on other shards.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from addons.stores.redis.keys import CHANNEL, DUE_KEY, LIVE_STREAMS_LUA, insights_key, presence_key, user_key
from addons.stores.redis.outage import RedisOutage

PART = "the user states"  # in log lines and 503 messages

# KEYS: per user, its version, state and presence keys. Per user: version ('' for none), the
# document ('' for none) and the streams open on live replicas.
_LOAD = LIVE_STREAMS_LUA + """
local loaded = {}
for i = 1, #KEYS, 3 do
  loaded[#loaded + 1] = redis.call('GET', KEYS[i]) or ''
  loaded[#loaded + 1] = redis.call('GET', KEYS[i + 1]) or ''
  loaded[#loaded + 1] = live_streams(KEYS[i + 2])
end
return loaded
"""

# KEYS: version, state, due zset, then one insights hash per count.
# ARGV: expected version, state JSON ('' deletes it), ttl, due score ('' removes), user id,
#       insights ttl, channel, how many counts; then (field, amount) per count, in KEYS order;
#       then the messages to publish on the channel, which leave with the commit or not at all.
_COMMIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return -1 end
local ttl = tonumber(ARGV[3])
if ARGV[2] == '' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ttl)
end
redis.call('SET', KEYS[1], current + 1, 'EX', ttl)
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[3], ARGV[5])
else
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
end
for i = 4, #KEYS do
  local at = 9 + (i - 4) * 2
  redis.call('HINCRBY', KEYS[i], ARGV[at], ARGV[at + 1])
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
for i = 9 + tonumber(ARGV[8]) * 2, #ARGV do
  redis.call('PUBLISH', ARGV[7], ARGV[i])
end
return current + 1
"""

# KEYS: due zset. ARGV: now, limit. Claims (removes and returns) the users due by now.
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due, 500 do  -- unpack has a limit on how many values it spreads
  redis.call('ZREM', KEYS[1], unpack(due, i, math.min(i + 499, #due)))
end
return due
"""


@dataclass(frozen=True)
class LoadedState:
    user_id: str
    version: int
    state: Optional[Dict[str, Any]]  # None: nothing is kept for this user
    streams: int = 0  # the user's toast streams open on live replicas, read with the state


@dataclass
class Commit:
    """What one unit of work writes: the user's new document, when the user is next due, and
    the insights counts it added ((day, trigger id, key) → amount)."""

    state: Optional[Mapping[str, Any]]
    due_at: Optional[float] = None
    counts: Dict[Tuple[str, str, str], int] = field(default_factory=dict)
    messages: List[str] = field(default_factory=list)  # published on ``CHANNEL`` by the same script

    def check(self) -> None:
        """``ValueError`` for what the script cannot take. Checked before it runs: a script
        stopped half-way by a bad number would have written part of the commit (Redis does
        not roll scripts back)."""
        if self.due_at is not None and not math.isfinite(self.due_at):
            raise ValueError(f"due_at must be a finite time, got {self.due_at!r}")
        for where, amount in self.counts.items():
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise ValueError(f"count {where} must be a whole number, got {amount!r}")


class RedisUserStates:
    def __init__(self, client: "Redis[str]", *, ttl_s: float = 86_400.0, insights_ttl_s: float = 90 * 86_400.0,
                 outage: Optional[RedisOutage] = None) -> None:
        self._redis = client
        self._outage = outage or RedisOutage()
        self._ttl_s = max(1, int(ttl_s))
        self._insights_ttl_s = max(1, int(insights_ttl_s))
        self._commit = client.register_script(_COMMIT)
        self._load = client.register_script(_LOAD)
        self._claim_due = client.register_script(_CLAIM_DUE)

    async def load(self, user_id: str) -> LoadedState:
        return (await self.load_many([user_id]))[0]

    async def load_many(self, user_ids: Sequence[str]) -> List[LoadedState]:
        """Each user's document, version and open streams, in one round trip."""
        keys = [key for user_id in user_ids
                for key in (user_key(user_id, "ver"), user_key(user_id, "state"), presence_key(user_id))]
        with self._outage.call(PART):
            raw: List[Any] = await self._load(keys=keys)
        return [
            LoadedState(user_id, int(raw[3 * n] or 0), json.loads(raw[3 * n + 1]) if raw[3 * n + 1] else None,
                        int(raw[3 * n + 2]))
            for n, user_id in enumerate(user_ids)
        ]

    async def commit(self, loaded: LoadedState, commit: Commit) -> bool:
        """Writes ``commit`` if the user is still at ``loaded.version``; False if another
        unit of work committed first (then nothing was written)."""
        return (await self.commit_many([(loaded, commit)]))[0]

    async def commit_many(self, commits: Sequence[Tuple[LoadedState, Commit]]) -> List[bool]:
        """Each user's commit as ``commit`` does it, all in one round trip; each lands or not
        on its own."""
        for _, commit in commits:
            commit.check()
        calls = [self._commit_call(loaded, commit) for loaded, commit in commits]
        with self._outage.call(PART):
            results = await self._evalsha_all(calls)
        return [int(result) >= 0 for result in results]

    def _commit_call(self, loaded: LoadedState, commit: Commit) -> Tuple[List[str], List[Any]]:
        counts = list(commit.counts.items())
        keys: List[str] = [user_key(loaded.user_id, "ver"), user_key(loaded.user_id, "state"), DUE_KEY]
        keys += [insights_key(day, trigger_id) for (day, trigger_id, _), _ in counts]
        args: List[Any] = [
            loaded.version,
            json.dumps(commit.state, separators=(",", ":")) if commit.state else "",
            self._ttl_s,
            "" if commit.due_at is None else repr(commit.due_at),
            loaded.user_id,
            self._insights_ttl_s,
            CHANNEL,
            len(counts),
        ]
        for (_, _, field_name), amount in counts:
            args += [field_name, amount]
        args += commit.messages
        return keys, args

    async def _evalsha_all(self, calls: Sequence[Tuple[List[str], List[Any]]]) -> List[Any]:
        """The commit script once per call, pipelined. Its SHA is sent, not its text; after a
        Redis restart forgot it, it is loaded again and the calls Redis refused are sent again
        (a refused call ran nothing)."""
        results: List[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for n in todo:
                    keys, args = calls[n]
                    pipe.evalsha(self._commit.sha, len(keys), *keys, *args)
                answers = await pipe.execute(raise_on_error=False)
            for n, answer in zip(todo, answers):
                results[n] = answer
            todo = [n for n in todo if isinstance(results[n], NoScriptError)]
            if not todo:
                break
            self._commit.sha = await self._redis.script_load(self._commit.script)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def claim_due(self, now: float, limit: int = 1000) -> List[str]:
        """The users due by ``now``, each given to exactly one caller across the cluster."""
        with self._outage.call(PART):
            claimed: List[str] = await self._claim_due(keys=[DUE_KEY], args=[repr(now), limit])
        return claimed

    async def reschedule(self, user_id: str, at: float) -> None:
        """A claimed user whose pass failed: due again at ``at`` (a later pass, on any replica)."""
        with self._outage.call(PART):
            await self._redis.zadd(DUE_KEY, {user_id: at})

    async def counts(self, day: str, trigger_id: str) -> Dict[str, int]:
        with self._outage.call(PART):
            raw: Dict[str, str] = await self._redis.hgetall(insights_key(day, trigger_id))
        return {key: int(value) for key, value in raw.items()}

"""Each user's state in Redis as one versioned document (docs/design/cluster.md, "unit of work
per user"): one command loads it, one script commits it only if nobody committed since.

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
from typing import Any, Dict, List, Mapping, Optional, Tuple

from redis.asyncio import Redis

from addons.stores.redis.outage import RedisOutage

PREFIX = "proactive:"
PART = "the user states"  # in log lines and 503 messages
DUE_KEY = f"{PREFIX}due"
CHANNEL = f"{PREFIX}offers"  # where committed offers go to every replica's streams

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


@dataclass
class Commit:
    """What one unit of work writes: the user's new document, when the user is next due, and
    the insights counts it added ((day, trigger id, key) → amount)."""

    state: Optional[Mapping[str, Any]]
    due_at: Optional[float] = None
    counts: Dict[Tuple[str, str, str], int] = field(default_factory=dict)
    messages: List[str] = field(default_factory=list)  # published on ``CHANNEL`` by the same script


class RedisUserStates:
    def __init__(self, client: "Redis[str]", *, ttl_s: float = 86_400.0, insights_ttl_s: float = 90 * 86_400.0,
                 outage: Optional[RedisOutage] = None) -> None:
        self._redis = client
        self._outage = outage or RedisOutage()
        self._ttl_s = max(1, int(ttl_s))
        self._insights_ttl_s = max(1, int(insights_ttl_s))
        self._commit = client.register_script(_COMMIT)
        self._claim_due = client.register_script(_CLAIM_DUE)

    async def load(self, user_id: str) -> LoadedState:
        with self._outage.call(PART):
            version, document = await self._redis.mget(_key(user_id, "ver"), _key(user_id, "state"))
        return LoadedState(user_id, int(version or 0), json.loads(document) if document else None)

    async def commit(self, loaded: LoadedState, commit: Commit) -> bool:
        """Writes ``commit`` if the user is still at ``loaded.version``; False if another
        unit of work committed first (then nothing was written)."""
        # Checked before the script runs: a script stopped half-way by a bad number would have
        # written part of the commit (Redis does not roll scripts back).
        if commit.due_at is not None and not math.isfinite(commit.due_at):
            raise ValueError(f"due_at must be a finite time, got {commit.due_at!r}")
        for where, amount in commit.counts.items():
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise ValueError(f"count {where} must be a whole number, got {amount!r}")
        counts = list(commit.counts.items())
        keys: List[str] = [_key(loaded.user_id, "ver"), _key(loaded.user_id, "state"), DUE_KEY]
        keys += [f"{PREFIX}insights:{day}:{trigger_id}" for (day, trigger_id, _), _ in counts]
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
        with self._outage.call(PART):
            result = await self._commit(keys=keys, args=args)
        return int(result) >= 0

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
            raw: Dict[str, str] = await self._redis.hgetall(f"{PREFIX}insights:{day}:{trigger_id}")
        return {key: int(value) for key, value in raw.items()}


def _key(user_id: str, what: str) -> str:
    return f"{PREFIX}{{u:{user_id}}}:{what}"

"""The copilot's Redis keys, in one place (docs/design/cluster.md, "Key schema").

A user's keys share the hash tag ``{u:<user>}``; the keys everybody writes (the due set, the
insights counts, the offers channel) do not, which is why the scripts need one Redis (or
Sentinel), not Redis Cluster.
"""

from __future__ import annotations

PREFIX = "proactive:"
DUE_KEY = f"{PREFIX}due"  # zset: user → when the periodic pass must next look at them
DUE_OWNERS_KEY = f"{PREFIX}due:owners"  # hash: due user → the replica whose commit planned it (it keeps the state)
VERSIONS_KEY = f"{PREFIX}versions"  # counter: every commit's new version comes from it, so none is reused
CHANNEL = f"{PREFIX}offers"  # pub/sub: committed offers, to every replica's streams
REPLICA_PREFIX = f"{PREFIX}replica:"  # + replica id: the replica's heartbeat (it lives while this exists)

# Lua: ``live_streams(presence key)``, the user's open streams on replicas whose heartbeat key
# exists; counts of replicas that died are removed on the way.
LIVE_STREAMS_LUA = f"""
local function live_streams(presence)
  local total = 0
  local fields = redis.call('HGETALL', presence)
  for i = 1, #fields, 2 do
    if redis.call('EXISTS', '{REPLICA_PREFIX}' .. fields[i]) == 1 then
      total = total + tonumber(fields[i + 1])
    else
      redis.call('HDEL', presence, fields[i])
    end
  end
  return total
end
"""


# Lua: the user's key names as ``user_key`` and ``presence_key`` make them, for scripts that
# take user ids rather than keys: one argument per user instead of several (redis-py packs
# each argument in Python, about 1 µs apiece).
USER_KEYS_LUA = f"""
local function user_key(user, what)
  return '{PREFIX}{{u:' .. user .. '}}:' .. what
end
local function presence_key(user)
  return '{PREFIX}streams:{{u:' .. user .. '}}'
end
"""


def user_key(user_id: str, what: str) -> str:
    """``proactive:{u:U}:ver`` (the document's version), ``:state`` (the document),
    ``:sessions`` (the sessions whose action rows are kept apart), ``:actions:<session>``
    (a session's action rows) and ``:name`` (the first name, which outlives the document)."""
    return f"{PREFIX}{{u:{user_id}}}:{what}"


def presence_key(user_id: str) -> str:
    """A hash of replica id → the user's streams open on that replica."""
    return f"{PREFIX}streams:{{u:{user_id}}}"


def insights_key(day: str, trigger_id: str) -> str:
    """A hash of the insights' counts of one trigger on one UTC day."""
    return f"{PREFIX}insights:{day}:{trigger_id}"


def replica_key(replica_id: str) -> str:
    return f"{REPLICA_PREFIX}{replica_id}"

"""Chat sessions shared by several replicas through Redis (docs/design/cluster.md, "Chat
across replicas"): a socket held by replica B is found by ``/inject`` on replica A.

Per chat session S: ``proactive:chat-owner:S`` (hash: its ``owner``) and
``proactive:chat-sockets:S`` (set of ``<replica>:<sid>``). Each replica refreshes ``proactive:replica:<id>`` (a key with a
TTL) while it runs, and says again where its sockets are: the sockets of a replica that died
stop counting once its key expires (and are removed the next time the session is looked at),
and what Redis lost comes back within a beat. The scripts read those replica keys by
name, which a single Redis (or Sentinel) allows and Redis Cluster does not.

A leave that fails (Redis away at that moment) is kept and retried with each heartbeat, so a
socket that is gone does not keep its session open, or owned, in Redis.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Awaitable, Dict, List, Optional, Set, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from addons.errors import StoreUnavailable
from addons.rasa.chat_sessions import no_open_session, owned_by_another
from addons.stores.redis.client import redis_client
from addons.stores.redis.keys import PREFIX, replica_key
from addons.stores.redis.outage import RedisOutage

logger = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
PART = "the chat sessions"  # in log lines and 503 messages
REPLICA_TTL_S = 15  # three missed heartbeats: the replica is gone
SESSION_TTL_S = 86_400  # a session nobody joined for a day is forgotten

_LIVE = """
local function live(sockets, prefix)
  local any = false
  for _, member in ipairs(redis.call('SMEMBERS', sockets)) do
    local replica = string.match(member, '^([^:]+):')
    if replica and redis.call('EXISTS', prefix .. 'replica:' .. replica) == 1 then
      any = true
    else
      redis.call('SREM', sockets, member)
    end
  end
  return any
end
"""
# KEYS: sockets, owner hash. ARGV: prefix, member, user ('' for none), ttl. A session none of
# whose sockets is alive any more belonged to nobody: its old owner goes before this one joins.
_JOIN = _LIVE + """
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 0 and not live(KEYS[1], ARGV[1]) then
  redis.call('DEL', KEYS[2])
end
redis.call('SADD', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[2], 'owner', ARGV[3]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""
# KEYS: sockets, owner hash. ARGV: prefix, member
_LEAVE = _LIVE + """
redis.call('SREM', KEYS[1], ARGV[2])
if not live(KEYS[1], ARGV[1]) then redis.call('DEL', KEYS[1], KEYS[2]) end
return 1
"""
# KEYS: sockets, owner hash. ARGV: prefix, user, ttl. Nil when no live socket is in the session.
_CLAIM = _LIVE + """
if not live(KEYS[1], ARGV[1]) then return false end
if redis.call('HSETNX', KEYS[2], 'owner', ARGV[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return redis.call('HGET', KEYS[2], 'owner')
"""

T = TypeVar("T")


class RedisChatSessions:
    """``ChatSessionRegistry`` in Redis, for several replicas."""

    def __init__(self, client: "Redis[str]", *, replica_id: Optional[str] = None,
                 outage: Optional[RedisOutage] = None) -> None:
        self._redis = client
        self._outage = outage or RedisOutage()
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self._socket_users: Dict[str, str] = {}
        self._session_of_socket: Dict[str, str] = {}
        self._local_sessions: Dict[str, Set[str]] = {}
        self._join = client.register_script(_JOIN)
        self._leave = client.register_script(_LEAVE)
        self._claim = client.register_script(_CLAIM)
        self._heartbeat: Optional["asyncio.Task[None]"] = None
        self._unfinished_leaves: Dict[str, str] = {}  # member → session: to retry with the next beat

    @classmethod
    def from_url(cls, url: str, *, replica_id: Optional[str] = None,
                 outage: Optional[RedisOutage] = None) -> "RedisChatSessions":
        client = redis_client(url)
        return cls(client, replica_id=replica_id, outage=outage)

    async def start(self) -> None:
        """The replica's first heartbeat, then one every ``HEARTBEAT_S`` (its sockets count while it beats)."""
        if self._heartbeat is None:
            try:
                await self._call(self._redis.set(self._replica_key, "1", ex=REPLICA_TTL_S))
            except StoreUnavailable as e:  # the outage is logged once; the heartbeat keeps trying, chats work meanwhile
                logger.debug("replica heartbeat to Redis failed at start: %s", e)
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="proactive_replica_heartbeat")

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        try:
            await self._redis.delete(self._replica_key)  # its sockets stop counting at once
        except RedisError:
            pass
        await self._redis.close()

    async def connected(self, sid: str, user_id: str) -> None:
        self._socket_users[sid] = user_id

    async def joined(self, session_id: str, sid: str) -> None:
        await self._leave_session(sid)
        self._session_of_socket[sid] = session_id
        self._local_sessions.setdefault(session_id, set()).add(sid)
        user_id = self._socket_users.get(sid, "")
        await self._call(self._join(keys=self._keys(session_id), args=[PREFIX, self._member(sid), user_id, SESSION_TTL_S]))

    async def left(self, sid: str) -> None:
        self._socket_users.pop(sid, None)
        await self._leave_session(sid)

    async def bind_user(self, session_id: str, user_id: str) -> None:
        if session_id in self._local_sessions:
            await self._call(self._claim(keys=self._keys(session_id), args=[PREFIX, user_id, SESSION_TTL_S]))

    async def claim_for(self, session_id: str, user_id: str) -> None:
        owner = await self._call(self._claim(keys=self._keys(session_id), args=[PREFIX, user_id, SESSION_TTL_S]))
        if owner is None:
            raise no_open_session(session_id)
        if owner != user_id:
            raise owned_by_another(session_id)

    async def user_of(self, session_id: str) -> Optional[str]:
        owner: Optional[str] = await self._call(self._redis.hget(self._keys(session_id)[1], "owner"))
        return owner

    def open_count(self) -> int:
        return len(self._local_sessions)

    # -- internals ----------------------------------------------------------------------------

    @property
    def _replica_key(self) -> str:
        return replica_key(self.replica_id)

    def _member(self, sid: str) -> str:
        return f"{self.replica_id}:{sid}"

    @staticmethod
    def _keys(session_id: str) -> List[str]:
        # Separate prefixes: no session id can name another session's key.
        return [f"{PREFIX}chat-sockets:{session_id}", f"{PREFIX}chat-owner:{session_id}"]

    async def _leave_session(self, sid: str) -> None:
        session_id = self._session_of_socket.pop(sid, None)
        if session_id is None:
            return
        local = self._local_sessions.get(session_id)
        if local is not None:
            local.discard(sid)
            if not local:
                del self._local_sessions[session_id]
        member = self._member(sid)
        try:
            await self._call(self._leave(keys=self._keys(session_id), args=[PREFIX, member]))
        except StoreUnavailable:
            self._unfinished_leaves[member] = session_id
            raise

    async def _beat(self) -> None:
        # A beat first: the task's first step runs when the loop is next free, and at start-up
        # that can be after Rasa loaded its model, longer than ``REPLICA_TTL_S``. Sleeping first
        # left the replica dead for one more beat once it was serving.
        while True:
            try:
                with self._outage.call(PART):
                    await self.beat()
            except StoreUnavailable as e:  # the outage is logged once; the next beat heals
                logger.debug("replica heartbeat to Redis failed: %s", e)
            await asyncio.sleep(HEARTBEAT_S)

    async def beat(self) -> None:
        """The replica is alive, and its sockets are where they are: said again every beat, so
        what Redis lost (a restart without persistence, a join while it was down) comes back,
        and leaves that failed are done."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._replica_key, "1", ex=REPLICA_TTL_S)
            for sid, session_id in self._session_of_socket.items():
                user_id = self._socket_users.get(sid, "")
                await self._join(keys=self._keys(session_id), args=[PREFIX, self._member(sid), user_id, SESSION_TTL_S],
                                 client=pipe)
            leaves = list(self._unfinished_leaves.items())
            for member, session_id in leaves:
                await self._leave(keys=self._keys(session_id), args=[PREFIX, member], client=pipe)
            await pipe.execute()
        for member, _ in leaves:
            self._unfinished_leaves.pop(member, None)

    async def _call(self, pending: Awaitable[T]) -> T:
        with self._outage.call(PART):
            return await pending

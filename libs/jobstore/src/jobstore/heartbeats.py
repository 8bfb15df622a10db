"""Worker liveness in Redis: every worker writes the time of its latest heartbeat under a key of
its own with a time-to-live, so a worker that stops (frozen, killed, cut off) vanishes on its own
once the TTL runs out, measured by Redis's clock, whatever the clocks of the machines say.

A set indexes the workers' names, so the gateway reads a few keys rather than scanning the whole
store; names whose heartbeat has expired leave the set when it is read.
"""

import time
from dataclasses import dataclass

import redis

# KEYS: the index of worker names; ARGV: the prefix of heartbeat keys. Returns the latest
# heartbeat of every live worker, dropping from the index the names whose heartbeat expired, in
# one atomic step (a worker beating meanwhile is never dropped).
_READ_LIVE = """
local stamps = {}
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local stamp = redis.call('GET', ARGV[1] .. worker)
    if stamp then
        table.insert(stamps, stamp)
    else
        redis.call('SREM', KEYS[1], worker)
    end
end
return stamps
"""


@dataclass(frozen=True)
class WorkerLiveness:
    alive: int
    newest_age_seconds: float | None  # since the latest heartbeat of any worker
    oldest_age_seconds: float | None  # the live worker heard from longest ago


class Heartbeats:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._index = f"{prefix}:workers"
        self._key_prefix = f"{prefix}:heartbeat:"
        self._read_live = client.register_script(_READ_LIVE)

    def beat(self, worker: str, ttl_seconds: int) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self._key_prefix + worker, repr(time.time()), ex=ttl_seconds)
        pipe.sadd(self._index, worker)
        pipe.execute()

    def forget(self, worker: str) -> None:
        """A worker shutting down cleanly is gone at once, not a TTL later."""
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(self._key_prefix + worker)
        pipe.srem(self._index, worker)
        pipe.execute()

    def liveness(self) -> WorkerLiveness:
        stamps = self._read_live(keys=[self._index], args=[self._key_prefix])
        now = time.time()
        ages = [max(0.0, now - float(stamp)) for stamp in stamps]
        return WorkerLiveness(
            alive=len(ages),
            newest_age_seconds=min(ages, default=None),
            oldest_age_seconds=max(ages, default=None),
        )

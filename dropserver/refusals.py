"""Refusals decided in the process, added to the drop's rejection counts in Redis.

A purchase or entry refused before its script runs (a proof of work that is invalid or expired,
an attempt before the opening) never reaches Redis, yet ``/stats`` promises rejections by reason
and an operator wants to see how many bots sent forged or stale tickets. Counting each one in
Redis would give the cheapest requests to refuse a round trip; instead they are tallied here
and added to the drop's ``counts`` hash (the same ``rej:<reason>`` fields the scripts write) by a
periodic flush, one pipelined round trip for all drops. A flush that fails keeps its tallies for
the next one; a process that dies loses at most one interval of them (statistics, not orders).
"""

from __future__ import annotations

from collections import Counter

from dropserver.keys import drop_keys
from dropserver.redis_clients import RedisClient


class RefusalTally:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._counts: Counter[tuple[str, str]] = Counter()  # (drop id, reason) -> refusals

    def count(self, drop_id: str, reason: str) -> None:
        self._counts[drop_id, reason] += 1

    def pending(self, drop_id: str, reason: str) -> int:
        """Refusals counted here and not flushed yet."""
        return self._counts[drop_id, reason]

    async def flush(self) -> None:
        if not self._counts:
            return
        sending, self._counts = self._counts, Counter()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for (drop_id, reason), n in sending.items():
                    pipe.hincrby(drop_keys(drop_id).counts, f"rej:{reason}", n)
                await pipe.execute()
        except BaseException:
            # Nothing was acknowledged: send all of it again next time (a partly applied
            # pipeline may count some twice; these are statistics, and Redis rarely fails
            # halfway through one write).
            self._counts.update(sending)
            raise

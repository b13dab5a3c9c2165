"""Redis's clock, read in this process without a round trip.

Scripts decide by Redis ``TIME``. A request path that answers without Redis (the challenge
endpoint) must decide by the same clock, so every reply that carries Redis's time updates the
offset between it and this host's clock; until the first one, the offset is zero.
"""

from __future__ import annotations

import time


class RedisClock:
    def __init__(self) -> None:
        self._offset_ms = 0.0
        self.synced = False

    def observe(self, redis_ms: int, sent_at: float, received_at: float) -> None:
        """A Redis time read between two local ``time.time()`` readings: the reading is
        placed at their midpoint, so the error is at most half the round trip."""
        self._offset_ms = redis_ms - (sent_at + received_at) * 500
        self.synced = True

    def now_ms(self) -> float:
        return time.time() * 1000 + self._offset_ms

    @property
    def offset_ms(self) -> float:
        return self._offset_ms

"""RFC 3339 in and out; inside, times are integer milliseconds since the epoch (Redis's clock)."""

from __future__ import annotations

import time
from datetime import datetime


def parse_rfc3339(text: str) -> int:
    """Milliseconds since the epoch. Raises ValueError for anything but a zoned RFC 3339 time."""
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError("expected an RFC 3339 time such as 2026-11-21T20:00:00Z")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("the time needs a zone (Z or +hh:mm)")
    return round(parsed.timestamp() * 1000)


def format_ms(ms: int | None) -> str | None:
    """``2026-11-21T20:00:00.123Z``. Every response carries a time or two, so the second's
    prefix is cached: the last one asked for is almost always the next one asked for."""
    if not ms:
        return None
    global _last_second, _last_prefix
    second, millis = divmod(ms, 1000)
    if second != _last_second:
        _last_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = second
    return f"{_last_prefix}.{millis:03d}Z"


_last_second = -1
_last_prefix = ""

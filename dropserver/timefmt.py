"""RFC 3339 in and out; inside, times are integer milliseconds since the epoch (Redis's clock)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_rfc3339(text: str) -> int:
    """Milliseconds since the epoch. Raises ValueError for anything but a zoned RFC 3339 time."""
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError("expected an RFC 3339 time such as 2026-11-21T20:00:00Z")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("the time needs a zone (Z or +hh:mm)")
    return round(parsed.timestamp() * 1000)


def format_ms(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"

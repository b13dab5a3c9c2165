from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dropserver.timefmt import format_ms, parse_rfc3339


@pytest.mark.parametrize(
    "ms",
    [1, 999, 1_000, 1_763_749_200_123, 1_763_749_200_999, 1_763_749_201_000, 4_102_444_800_000],
)
def test_format_matches_datetime(ms: int) -> None:
    expected = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    assert format_ms(ms) == expected.replace("+00:00", "Z")
    assert parse_rfc3339(format_ms(ms) or "") == ms


def test_zero_and_none_are_absent() -> None:
    assert format_ms(0) is None
    assert format_ms(None) is None


@pytest.mark.parametrize("text", ["2026-11-21", "2026-11-21T20:00:00", "soon", "20:00"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_parse_offsets() -> None:
    assert parse_rfc3339("2026-11-21T21:00:00+01:00") == parse_rfc3339("2026-11-21T20:00:00Z")

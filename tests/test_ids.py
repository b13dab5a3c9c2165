from __future__ import annotations

from dropserver.ids import random_hex128


def test_ids_are_128_bit_hex_and_never_repeat() -> None:
    ids = [random_hex128() for _ in range(20_000)]  # crosses many 4 KiB blocks
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == len(ids)

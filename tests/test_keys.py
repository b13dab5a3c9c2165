"""One drop, one hash tag: every key of a drop lands in one Redis Cluster slot."""

from __future__ import annotations

from dataclasses import fields

from redis.crc import key_slot

from dropserver.keys import DropKeys, drop_keys


def test_every_key_of_a_drop_shares_one_slot() -> None:
    keys = drop_keys("summer-sneakers-2026")
    names = [getattr(keys, f.name) for f in fields(DropKeys)]
    names += [keys.limiter("person", "p-1"), keys.limiter("ip", "203.0.113.0/24"),
              keys.pow_ticket("c" * 32)]  # fmt: skip
    assert all(name.startswith("{drop:summer-sneakers-2026}") for name in names)
    assert len({key_slot(name.encode()) for name in names}) == 1


def test_drops_do_not_share_keys() -> None:
    one, two = drop_keys("a"), drop_keys("b")
    assert not {getattr(one, f.name) for f in fields(DropKeys)} & {
        getattr(two, f.name) for f in fields(DropKeys)
    }


def test_limiter_prefix_is_what_limiter_keys_start_with() -> None:
    keys = drop_keys("d1")
    for kind in ("person", "ip", "device"):
        assert keys.limiter_prefix(kind) + "v-1" == keys.limiter(kind, "v-1")

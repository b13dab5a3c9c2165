"""Every Lua script: documented, self-contained, and accepted by the Redis the tests run."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from dropserver.scripts import LUA_DIR, load_all, load_script

NAMES = sorted(p.stem for p in LUA_DIR.glob("*.lua"))


@pytest.mark.parametrize("name", NAMES)
def test_header_documents_keys_argv_and_replies(name: str) -> None:
    source = (LUA_DIR / f"{name}.lua").read_text()
    assert source.startswith("--[["), "the header comes first"
    header = source[: source.index("]]")]
    assert "KEYS[1]" in header
    assert "ARGV" in header
    assert "Output" in header


@pytest.mark.parametrize("name", NAMES)
async def test_loads_on_redis_without_flags(redis: Redis, name: str) -> None:
    script = load_script(name)
    text = script.source.decode()
    assert "@include" not in text and not text.startswith("#!")
    assert "math.random" not in text  # never Redis's predictable generator
    assert await redis.script_load(script.source) == script.sha


def test_load_all_finds_every_script() -> None:
    assert sorted(load_all()) == NAMES
    expected = {"purchase", "demand_report", "confirm_order", "cancel_order", "expire_holds"}
    assert expected <= set(NAMES)

"""``dropserver demo`` (the README's first command), run small in process: what it prints is
checked, not only that it finishes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dropserver.demo import DUEL_SUPPLY, run_demo


async def test_the_demo_sells_exactly_the_supply_and_the_webhook_gets_every_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_demo(tmp_path, supply=20, persons=40, accounts=2) == 0
    out = capsys.readouterr().out
    outcomes = re.search(r"^outcomes: (.*)$", out, re.M)
    assert outcomes is not None
    counts = {k: int(v) for k, v in (item.split() for item in outcomes[1].split(", "))}
    assert counts["held"] == 20 and sum(counts.values()) == 80  # 40 persons x 2 accounts
    assert set(counts) <= {"held", "limit_reached", "sold_out"}
    assert "serials unique and within 1..20: True" in out
    assert re.search(
        r"stock: supply 20 = remaining \d+ \+ held 0 \+ confirmed \d+; consistent: True", out
    )
    duel = {
        m[0]: (int(m[1]), int(m[2]))
        for m in re.findall(r"^(unprotected FCFS|protected lottery)\s+(\d+)\s+(\d+)", out, re.M)
    }
    assert sum(duel["unprotected FCFS"]) == sum(duel["protected lottery"]) == DUEL_SUPPLY
    received = re.search(r"received (\d+) of the (\d+) events in the drops' streams", out)
    assert received is not None and received[1] == received[2] and int(received[1]) > 0
    valid = re.search(r"signatures valid: (\d+) of (\d+) deliveries; duplicates: 0", out)
    assert valid is not None and valid[1] == valid[2]

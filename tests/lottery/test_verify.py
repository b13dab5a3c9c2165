"""The offline verifier: accepts a real draw, names every kind of tampering, never tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import dropserver.lottery
from dropserver.lottery import (
    build_proof,
    entries_digest,
    format_entries,
    new_entry_id,
    new_seed,
    parse_entries,
    receipt,
    write_entries,
)
from dropserver.lottery import ndjson as ndjson_module
from dropserver.lottery import verify as verify_module
from dropserver.lottery.verify import main, verify

DROP = "drop-42"
SUPPLY = 7
BEACON = "drand:round-987654"
ROOT = Path(__file__).resolve().parents[2]

Files = tuple[Path, Path]


def make_draw(tmp_path: Path, n: int = 60, supply: int = SUPPLY) -> tuple[Files, list[str]]:
    receipts = [receipt(DROP, new_entry_id()) for _ in range(n)]
    proof = build_proof(DROP, new_seed(), receipts, supply, BEACON, datetime.now(UTC))
    proof_path, entries_path = tmp_path / "proof.json", tmp_path / "entries.ndjson"
    proof_path.write_text(proof.to_json(indent=2))
    write_entries(entries_path, sorted(receipts))
    return (proof_path, entries_path), sorted(receipts)


@pytest.fixture
def draw(tmp_path: Path) -> Files:
    files, _ = make_draw(tmp_path)
    return files


def run(files: Files, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([str(files[0]), str(files[1])])
    out, err = capsys.readouterr()
    return code, out + err


def edit_proof(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    proof = json.loads(path.read_text())
    change(proof)
    path.write_text(json.dumps(proof))


def entry_lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def flip_hex(value: str, at: int = 0) -> str:
    return value[:at] + ("1" if value[at] == "0" else "0") + value[at + 1 :]


# --- accepting ------------------------------------------------------------------------------


def test_accepts_a_real_draw(draw: Files, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(draw, capsys)
    assert code == 0, out
    assert out.startswith(f"OK: 60 entries, {SUPPLY} winners, 53 on the waitlist")
    result = verify(*draw)
    assert result.ok and result.problems == []


@pytest.mark.parametrize(("n", "supply"), [(0, 5), (1, 5), (5, 5), (6, 0)])
def test_accepts_edge_sizes(
    tmp_path: Path, n: int, supply: int, capsys: pytest.CaptureFixture[str]
) -> None:
    files, _ = make_draw(tmp_path, n, supply)
    code, out = run(files, capsys)
    assert code == 0, out


def test_accepts_other_json_layouts(draw: Files, capsys: pytest.CaptureFixture[str]) -> None:
    """A re-saved file (compact JSON, CRLF, extra members, no final LF) is still the list."""
    receipts = [json.loads(line)["receipt"] for line in entry_lines(draw[1])]
    lines = [
        json.dumps({"n": i, "receipt": r}, separators=(",", ":")) for i, r in enumerate(receipts)
    ]
    draw[1].write_text("\r\n".join(lines))
    code, out = run(draw, capsys)
    assert code == 0, out


def test_works_without_orjson(
    draw: Files, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ndjson_module, "loads_json", json.loads)
    monkeypatch.setattr(verify_module, "loads_json", json.loads)
    lines = entry_lines(draw[1])
    draw[1].write_text("".join(line.replace(": ", ":") for line in lines))  # not canonical
    code, out = run(draw, capsys)
    assert code == 0, out


# --- rejecting: the proof -------------------------------------------------------------------


def tamper_seed(files: Files) -> None:
    edit_proof(files[0], lambda p: p.update(seed=flip_hex(p["seed"], 10)))


def tamper_commitment(files: Files) -> None:
    edit_proof(files[0], lambda p: p.update(commitment=flip_hex(p["commitment"], 5)))


def swap_winners(files: Files) -> None:
    def change(p: dict[str, Any]) -> None:
        p["winners"][0], p["winners"][1] = p["winners"][1], p["winners"][0]

    edit_proof(files[0], change)


def swap_winner_with_waitlist(files: Files) -> None:
    def change(p: dict[str, Any]) -> None:
        p["winners"][3], p["waitlist"][0] = p["waitlist"][0], p["winners"][3]

    edit_proof(files[0], change)


def reorder_waitlist(files: Files) -> None:
    edit_proof(files[0], lambda p: p["waitlist"].reverse())


def drop_waitlist_entry(files: Files) -> None:
    edit_proof(files[0], lambda p: p["waitlist"].pop())


def wrong_entry_count(files: Files) -> None:
    edit_proof(files[0], lambda p: p.update(entry_count=p["entry_count"] + 1))


def wrong_supply(files: Files) -> None:
    edit_proof(files[0], lambda p: p.update(supply=p["supply"] + 1))


def wrong_digest(files: Files) -> None:
    edit_proof(files[0], lambda p: p.update(entries_digest=flip_hex(p["entries_digest"])))


def other_beacon(files: Files) -> None:
    edit_proof(files[0], lambda p: p.update(beacon="drand:round-987655"))


# --- rejecting: the entry list --------------------------------------------------------------


def rewrite_entries(files: Files, change: Callable[[list[str]], list[str]]) -> None:
    receipts = [json.loads(line)["receipt"] for line in entry_lines(files[1])]
    files[1].write_bytes(b"".join(format_entries(sorted(change(receipts)))))


def add_entry(files: Files) -> None:
    rewrite_entries(files, lambda rs: [*rs, receipt(DROP, "intruder")])


def remove_entry(files: Files) -> None:
    rewrite_entries(files, lambda rs: rs[:20] + rs[21:])


def change_entry(files: Files) -> None:
    rewrite_entries(files, lambda rs: [receipt(DROP, "replacement"), *rs[1:]])


def unsort_entries(files: Files) -> None:
    lines = entry_lines(files[1])
    lines[10], lines[11] = lines[11], lines[10]
    files[1].write_text("".join(lines))


def duplicate_entry(files: Files) -> None:
    lines = entry_lines(files[1])
    files[1].write_text("".join([*lines[:30], lines[29], *lines[31:]]))


def malformed_line(files: Files) -> None:
    lines = entry_lines(files[1])
    lines[4] = '{"receipt": "not-a-receipt"}\n'
    lines[8] = "{oops\n"
    files[1].write_text("".join(lines))


def empty_line(files: Files) -> None:
    lines = entry_lines(files[1])
    files[1].write_text("".join([*lines[:3], "\n", *lines[3:]]))


TAMPERING: dict[str, tuple[Callable[[Files], None], list[str]]] = {
    "seed": (tamper_seed, ["seed does not open the commitment", "winners differ"]),
    "commitment": (tamper_commitment, ["seed does not open the commitment"]),
    "swapped winners": (swap_winners, ["winners differ from the recomputed draw at winner #1"]),
    "winner swapped with waitlist": (
        swap_winner_with_waitlist,
        ["at winner #4", "waitlist entries differ from the recomputed draw at waitlist entry #1"],
    ),
    "reordered waitlist": (reorder_waitlist, ["waitlist entries differ", "waitlist entry #1"]),
    "shortened waitlist": (
        drop_waitlist_entry,
        ["winners plus waitlist hold 59 receipts, but entry_count is 60", "the proof lists 52"],
    ),
    "entry_count": (wrong_entry_count, ["61", "entry_count"]),
    "supply": (wrong_supply, ["supply 8", "must be 8", "winners differ"]),
    "entries digest": (wrong_digest, ["entries digest does not match"]),
    "beacon": (other_beacon, ["winners differ"]),
    "added entry": (add_entry, ["61 entries", "entry_count = 60", "entries digest does not"]),
    "removed entry": (remove_entry, ["59 entries", "entries digest does not match"]),
    "changed entry": (change_entry, ["entries digest does not match", "winners differ"]),
    "unsorted entries": (
        unsort_entries,
        ["not in canonical order", "line 12 comes before line 11"],
    ),
    "duplicate entry": (duplicate_entry, ["1 duplicate receipt", "entries digest does not match"]),
    "malformed lines": (
        malformed_line,
        ["line 5 has a receipt that is not 64 lower-case hex", "line 9 is not valid JSON"],
    ),
    "empty line": (empty_line, ["line 4 is empty", "61 entries"]),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_rejects_tampering(draw: Files, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    tamper, messages = TAMPERING[case]
    tamper(draw)
    code, out = run(draw, capsys)
    assert code == 1, out
    assert out.startswith("FAILED: ")
    for message in messages:
        assert message in out, (message, out)
    assert "Traceback" not in out


def test_unsorted_entries_is_the_only_problem_when_only_order_changed(
    draw: Files,
) -> None:
    unsort_entries(draw)
    result = verify(*draw)
    assert not result.ok
    assert len(result.problems) == 1 and "canonical order" in result.problems[0]


def test_many_malformed_lines_are_summarised(draw: Files) -> None:
    draw[1].write_text("garbage\n" * 50)
    result = verify(*draw)
    malformed = [p for p in result.problems if "entries file line" in p]
    assert len(malformed) == ndjson_module.MAX_LINE_PROBLEMS
    assert "... and 40 more malformed lines in the entries file" in result.problems


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.update(seed=None), "has no seed: the draw has not been revealed"),
        (lambda p: p.update(seed="abc"), "seed is not 64 lower-case hex characters"),
        (lambda p: p.update(algorithm="other-v9"), "unsupported algorithm 'other-v9'"),
        (lambda p: p.update(beacon=""), "beacon is an empty string"),
        (lambda p: p.update(drawn_at="yesterday"), "drawn_at 'yesterday' is not an RFC 3339"),
        (lambda p: p.pop("waitlist"), "field 'waitlist' is missing"),
        (lambda p: p.update(entry_count="60"), "'entry_count' must be a non-negative integer"),
    ],
)
def test_rejects_bad_proof_fields(
    draw: Files,
    change: Callable[[dict[str, Any]], None],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edit_proof(draw[0], change)
    code, out = run(draw, capsys)
    assert code == 1
    assert message in out, out


# --- unusable input: a message, exit 1, no traceback ----------------------------------------


def test_missing_files(draw: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    code, out = run((missing, draw[1]), capsys)
    assert code == 1
    assert f"cannot read the proof file '{missing}': No such file or directory" in out
    code, out = run((draw[0], tmp_path / "nope.ndjson"), capsys)
    assert code == 1
    assert "cannot read the entries file" in out
    code, out = run((tmp_path, tmp_path / "nope.ndjson"), capsys)  # a directory, then missing
    assert code == 1
    assert "cannot read the proof file" in out and "cannot read the entries file" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b"", "is not valid JSON"),
        (b"\xff\xfe", "is not valid JSON"),
        (b"[1, 2]", "is not a draw proof: the proof must be a JSON object"),
        (b'{"drop_id": "x"}', "is not a draw proof: field 'algorithm' is missing"),
    ],
)
def test_bad_proof_file(
    draw: Files, content: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    draw[0].write_bytes(content)
    code, out = run(draw, capsys)
    assert code == 1
    assert message in out, out
    assert "Traceback" not in out


def test_wrong_argument_count_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["only-one"])
    assert exc.value.code == 2
    assert "usage: dropserver verify-draw" in capsys.readouterr().err


def python_m(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "dropserver.lottery.verify", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_python_m_entry_point(draw: Files, tmp_path: Path) -> None:
    ok = python_m(str(draw[0]), str(draw[1]))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: 60 entries")
    assert ok.stderr == ""  # in particular no "found in sys.modules" RuntimeWarning
    missing = python_m(str(tmp_path / "missing.json"), str(draw[1]))
    assert missing.returncode == 1
    assert "cannot read the proof file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_lazy_package_exports(draw: Files) -> None:
    assert dropserver.lottery.verify_draw(*draw).ok
    assert dropserver.lottery.verify_main is main
    assert isinstance(dropserver.lottery.verify_draw(*draw), dropserver.lottery.VerifyResult)
    with pytest.raises(AttributeError):
        _ = dropserver.lottery.no_such_name


# --- entries file helpers -------------------------------------------------------------------


def test_writer_refuses_a_non_canonical_list(tmp_path: Path) -> None:
    receipts = sorted(receipt(DROP, str(i)) for i in range(3))
    path = tmp_path / "entries.ndjson"
    with pytest.raises(ValueError, match="ascending"):
        write_entries(path, receipts[::-1])
    assert not path.exists() and not list(tmp_path.iterdir())  # no partial or temp file
    write_entries(path, receipts)
    assert path.read_text() == "".join(f'{{"receipt": "{r}"}}\n' for r in receipts)
    assert parse_entries(path.read_bytes()).receipts == receipts


def test_canonical_fast_path_rejects_lookalikes() -> None:
    """Fixed-width lines that are not quite canonical still get a per-line verdict."""
    good = receipt(DROP, "x")
    line = f'{{"receipt": "{good}"}}\n'
    assert parse_entries(line.encode()).receipts == [good]
    shifted = f'{{"receipt": "{good[:-1]}"}} \n'  # 63 hex digits, same width
    assert parse_entries(shifted.encode()).bad_lines == 1
    upper = line.replace(good, good.upper())
    assert parse_entries(upper.encode()).bad_lines == 1
    other_key = line.replace("receipt", "receipx")
    assert parse_entries(other_key.encode()).bad_lines == 1


# --- scale ----------------------------------------------------------------------------------


def test_scale_200k_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a timing assertion (CI machines vary); prints the timings for the record."""
    n = 200_000
    receipts = [receipt(DROP, new_entry_id()) for _ in range(n)]
    start = time.perf_counter()
    proof = build_proof(DROP, new_seed(), receipts, 1000, BEACON, datetime.now(UTC))
    drawn = time.perf_counter()
    files = (tmp_path / "proof.json", tmp_path / "entries.ndjson")
    files[0].write_text(proof.to_json())
    write_entries(files[1], sorted(receipts))
    written = time.perf_counter()
    result = verify(*files)
    verified = time.perf_counter()
    assert result.ok, result.problems
    assert proof.entries_digest == entries_digest(receipts)
    with capsys.disabled():
        print(
            f"\n[scale {n}] draw {drawn - start:.2f}s, write {written - drawn:.2f}s, "
            f"verify {verified - written:.2f}s"
        )

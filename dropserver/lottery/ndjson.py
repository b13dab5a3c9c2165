"""The published entry list: NDJSON, one ``{"receipt": "<64 hex>"}`` object per line.

Canonical file (what the server writes): UTF-8 (in fact ASCII), receipts in canonical order
(ascending, no duplicates), each line exactly ``{"receipt": "<receipt>"}`` followed by one
LF, including the last line; an empty entry list is an empty file.

The reader is more liberal than the writer, because a person may re-save the file with
other tools: any JSON object with a string ``receipt`` member per line is accepted (other
members are ignored, whitespace and a missing final LF are fine). Whether the receipts are
well-formed, in order and the committed ones is judged by the verifier, not here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from dropserver.lottery.draw import RECEIPT_LEN, EntriesHasher, all_receipts, is_receipt

# orjson parses JSON several times faster than the json module; it is a dependency of the
# server but not required here, so the verifier still runs on a bare Python.
loads_json: Callable[[bytes], Any]
try:
    import orjson

    loads_json = orjson.loads
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    loads_json = json.loads

MAX_LINE_PROBLEMS = 10  # more than this many bad lines are summarised, not listed
_CHUNK = 1 << 16

_LINE_HEAD = b'{"receipt": "'
_LINE_TAIL = b'"}\n'
_LINE_LEN = len(_LINE_HEAD) + RECEIPT_LEN + len(_LINE_TAIL)
_SKELETON = _LINE_HEAD + b"0" * RECEIPT_LEN + _LINE_TAIL
# Fixed bytes of a canonical line: (offset, byte). Some of them (the e and c of "receipt")
# are hex digits themselves, which is why the positional checks below are needed.
_FIXED = [
    (i, _SKELETON[i : i + 1])
    for i in [*range(len(_LINE_HEAD)), *range(_LINE_LEN - len(_LINE_TAIL), _LINE_LEN)]
]
_HEX = b"0123456789abcdef"


def format_entries(receipts_sorted: Iterable[str]) -> Iterator[bytes]:
    """The canonical file contents, in chunks.

    Raises ``ValueError`` (possibly after some chunks were yielded) if the receipts are not
    well-formed and strictly ascending: the server must never publish a non-canonical list.
    """
    checker = EntriesHasher()
    it = iter(receipts_sorted)
    while chunk := list(islice(it, _CHUNK)):
        checker.update_many(chunk)
        yield b"".join([_LINE_HEAD + r.encode("ascii") + _LINE_TAIL for r in chunk])


def write_entries(path: str | Path, receipts_sorted: Iterable[str]) -> None:
    """Write the canonical file atomically: readers never see a partial or rejected list."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            for chunk in format_entries(receipts_sorted):
                f.write(chunk)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(slots=True)
class EntriesFile:
    """The receipts read from an entries file, in file order, and the lines that failed.

    ``receipts`` holds only the lines that parsed; ``line_numbers`` is None when every line
    parsed (the common case, no per-line bookkeeping), else the 1-based line of each receipt.
    """

    receipts: list[str] = field(default_factory=list)
    line_numbers: list[int] | None = None
    problems: list[str] = field(default_factory=list)
    bad_lines: int = 0

    def line_of(self, index: int) -> int:
        return index + 1 if self.line_numbers is None else self.line_numbers[index]


def parse_entries(data: bytes) -> EntriesFile:
    receipts = _parse_canonical(data)
    if receipts is not None:
        return EntriesFile(receipts=receipts)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the final LF ends the last line; it does not start a new one
    try:
        # Any JSON layout: one C-level pass per step. Any failure falls back to the per-line
        # loop, which is slower but says which line is wrong and why.
        objs = [loads_json(line) for line in lines]
        receipts = [obj["receipt"] for obj in objs]
        if all_receipts(receipts):
            return EntriesFile(receipts=receipts)
    except (ValueError, RecursionError, TypeError, KeyError):
        pass
    return _parse_slowly(lines)


def _parse_canonical(data: bytes) -> list[str] | None:
    """The receipts of a file in exactly the canonical layout, else None.

    A canonical file is n fixed-width lines, so it can be checked with a few C-level passes
    instead of a million JSON parses (0.2 s instead of 1.5 s): every fixed byte is at its
    offset in every line (one strided slice per offset), and removing all hex digits
    leaves exactly the fixed bytes that are not hex digits, so the 64 other bytes of each
    line are all hex digits. Then each receipt is a slice at a known offset.
    """
    n, rest = divmod(len(data), _LINE_LEN)
    if rest:
        return None
    for offset, byte in _FIXED:
        if data[offset::_LINE_LEN] != byte * n:
            return None
    if data.translate(None, _HEX) != _SKELETON.translate(None, _HEX) * n:
        return None
    text = data.decode("ascii")
    start = len(_LINE_HEAD)
    return [text[i : i + RECEIPT_LEN] for i in range(start, len(text), _LINE_LEN)]


def _parse_slowly(lines: list[bytes]) -> EntriesFile:
    result = EntriesFile(line_numbers=[])
    assert result.line_numbers is not None
    for number, line in enumerate(lines, 1):
        problem = None
        try:
            obj = loads_json(line)
        except (ValueError, RecursionError):
            problem = "is empty" if not line.strip() else "is not valid JSON"
        else:
            if not isinstance(obj, dict):
                problem = "is not a JSON object"
            elif "receipt" not in obj:
                problem = 'has no "receipt" member'
            elif not is_receipt(obj["receipt"]):
                problem = "has a receipt that is not 64 lower-case hex characters"
        if problem is None:
            result.receipts.append(obj["receipt"])
            result.line_numbers.append(number)
            continue
        result.bad_lines += 1
        if result.bad_lines <= MAX_LINE_PROBLEMS:
            shown = line[:100].decode("utf-8", "replace")
            result.problems.append(f"entries file line {number} {problem}: {shown!r}")
    if result.bad_lines > MAX_LINE_PROBLEMS:
        more = result.bad_lines - MAX_LINE_PROBLEMS
        result.problems.append(f"... and {more} more malformed lines in the entries file")
    return result

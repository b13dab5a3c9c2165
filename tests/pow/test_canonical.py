"""canonical_json must produce the altcha library's bytes (the challenge signature input)."""

from __future__ import annotations

from typing import Any

import pytest
from altcha import v2 as altcha_v2

from dropserver.pow import canonical_json

CASES: list[dict[str, Any]] = [
    {},
    {"b": 1, "a": 2},
    {"nonce": "ab", "cost": 5000, "keyLength": 32, "data": {"z": "1", "a": "2"}},
    {"nested": {"y": [{"d": 1, "c": [True, False, None]}], "x": -(2**53)}},
    {"escapes": 'quote " backslash \\ ctl \x00\x01\x1f\x7f \b\f\n\r\t end'},
    {"unicode": "é € 😀 \u2028 \u2029 </script>"},
    # Keys where JS and a plain sort disagree: array indices first, numerically; then UTF-16.
    {"10": "a", "9": "b", "01": "c", "a": "d", "0": "e", "4294967294": "f", "4294967295": "g"},
    {"\uffff": 1, "😀": 2, "é": 3, "Z": 4, "a": 5},
    # ALTCHA's sortKeys does not descend into arrays: insertion order there (indices first).
    {"list": [{"b": 1, "a": 2, "1": 0}, "x", 3, [], {"z": {"y": 1, "x": 2}}]},
    {"__proto__x": 1, "arr": [{"__proto__": 1}]},
]


@pytest.mark.parametrize("obj", CASES)
def test_same_bytes_as_altcha(obj: dict[str, Any]) -> None:
    assert canonical_json(obj) == altcha_v2._canonical_json(obj).encode()


def test_compact_and_sorted() -> None:
    assert canonical_json({"b": {"d": 1, "c": 2}, "a": [1, 2]}) == b'{"a":[1,2],"b":{"c":2,"d":1}}'


def test_objects_inside_arrays_keep_insertion_order() -> None:
    assert canonical_json({"a": [{"b": 1, "a": 2}]}) == b'{"a":[{"b":1,"a":2}]}'


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({"f": 1.5}, TypeError),
        ({"big": 2**53 + 1}, TypeError),
        ({1: "int key"}, TypeError),
        ({"b": b"bytes"}, TypeError),
        ({"s": "\ud800"}, ValueError),
        ({"__proto__": "x"}, ValueError),
    ],
)
def test_refuses_what_js_would_print_differently(obj: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        canonical_json(obj)

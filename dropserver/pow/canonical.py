"""Canonical JSON: the exact bytes the challenge signature is computed over.

ALTCHA defines it as JavaScript ``JSON.stringify`` with object keys sorted recursively and no
whitespace (altcha-lib ``canonicalJSON``, altcha-lib-py ``_canonical_json``). Getting one byte
wrong means a challenge signed by one implementation does not verify in the other. One quirk:
the sort does not descend into arrays, so objects inside arrays keep their insertion order
(JS still lists their integer-like keys first).

For the data we sign (ASCII keys that are not array indices, strings, small integers, bools,
no objects inside arrays) ``orjson.dumps(..., OPT_SORT_KEYS)`` already produces those bytes:
same string escapes as JSON.stringify, same compact separators, same key order. That is the
fast path (about 1 µs). Anything else (integer-like keys, which JS orders numerically and
first; non-ASCII keys, which JS orders by UTF-16 code unit; objects inside arrays) goes through
a small pure-Python encoder that follows the JS rules. Floats and integers beyond 2**53 are
refused: JS prints them differently from Python, and we never need them (keep signed ``data``
to strings).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

import orjson

_MAX_SAFE_INTEGER: Final = 2**53
_MAX_ARRAY_INDEX: Final = 2**32 - 2
_ARRAY_INDEX_RE: Final = re.compile(r"0|[1-9][0-9]*")
_ESCAPE_RE: Final = re.compile(r'[\x00-\x1f"\\]')
_SHORT_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def is_plain_key(key: str) -> bool:
    """True when JS and a plain code-point sort agree on where ``key`` goes.

    JS puts array-index keys ("0", "17") first, in numeric order; ASCII-only keys otherwise
    sort the same by code point (orjson) and by UTF-16 code unit (JS).
    """
    return key.isascii() and not key.isdigit()


def canonical_json(obj: Mapping[str, object]) -> bytes:
    """Return the canonical JSON bytes of ``obj`` (same bytes as the ALTCHA libraries).

    Accepts dicts with ``str`` keys, lists/tuples, ``str``, ``bool``, ``None`` and ``int``
    with ``|x| <= 2**53``. Raises ``TypeError`` for anything else (notably floats) and
    ``ValueError`` for strings that are not valid Unicode (lone surrogates).
    """
    if _check(obj, True):
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    return _encode(obj, True).encode()


def _check(value: object, sort: bool) -> bool:
    """Validate types recursively; return True when the orjson fast path is exact.

    ``sort`` is False inside arrays, where JS keeps insertion order and orjson would not.
    """
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str):
        _require_unicode(value)
        return True
    if isinstance(value, int):
        if not -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
            raise TypeError(f"integer {value} is outside the JS safe range; sign it as a string")
        return True
    if isinstance(value, Mapping):
        plain = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"object keys must be str, not {type(key).__name__}")
            _require_unicode(key)
            if sort and key == "__proto__":
                raise ValueError("'__proto__' keys cannot be signed (JS drops them)")
            plain = _check(item, sort) and plain and sort and is_plain_key(key)
        return plain
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        plain = True
        for item in value:
            plain = _check(item, False) and plain
        return plain
    raise TypeError(f"{type(value).__name__} is not supported in canonical JSON")


def _require_unicode(value: str) -> None:
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise ValueError("strings in signed data must be valid Unicode") from exc


def _is_array_index(key: str) -> bool:
    return _ARRAY_INDEX_RE.fullmatch(key) is not None and int(key) <= _MAX_ARRAY_INDEX


def _js_string(value: str) -> str:
    escaped = _ESCAPE_RE.sub(
        lambda m: _SHORT_ESCAPES.get(m[0], f"\\u{ord(m[0]):04x}"),
        value,
    )
    return f'"{escaped}"'


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be")


def _encode(value: object, sort: bool) -> str:
    """The slow path: JS ``JSON.stringify`` rules; keys sorted outside arrays (see above)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _js_string(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, Mapping):
        keys: list[str] = list(value)
        # JS enumerates array-index keys first, numerically, whatever the insertion order.
        index_keys = sorted((k for k in keys if _is_array_index(k)), key=int)
        other_keys = [k for k in keys if not _is_array_index(k)]
        if sort:
            other_keys.sort(key=_utf16_order)
        members = (f"{_js_string(k)}:{_encode(value[k], sort)}" for k in index_keys + other_keys)
        return "{" + ",".join(members) + "}"
    assert isinstance(value, Sequence)
    return "[" + ",".join(_encode(item, False) for item in value) + "]"

"""The verifiable draw: seeds, commitments, receipts, the entries digest, the shuffle, the proof.

Byte formats (all hashes are SHA-256, hex output is lower case; ``u64``/``lp`` as in
:mod:`dropserver.lottery.drbg`):

* seed: 32 random bytes; published as 64 hex characters once the draw is done.
* commitment: ``hex(SHA256(b"dropserver-commit-v1" || seed))``, published at drop creation.
  Both parts have a fixed length, so no length prefix is needed.
* entry id: 128 random bits as 32 lower-case hex characters, given only to the entrant.
* receipt: ``hex(SHA256(lp(b"dropserver-receipt-v1") || lp(utf8(drop_id)) ||
  lp(utf8(entry_id))))``: 64 lower-case hex characters, public.
* canonical entry order: receipts sorted ascending (byte order = code point order, as they
  are ASCII), no duplicates.
* entries digest: ``hex(SHA256(r_1 || "\\n" || r_2 || "\\n" || ... || r_n || "\\n"))`` over the
  receipts in canonical order as ASCII, each followed by one LF. That is exactly the output
  of ``jq -r .receipt ENTRIES.ndjson | sha256sum``. With no entries it is ``SHA256(b"")``.
* shuffle: forward Fisher-Yates over the canonical list ``a[0..n-1]`` with the DRBG::

      for i in 0, 1, ..., n-2:
          j = i + uniform_below(n - i)     # i <= j <= n-1
          swap a[i], a[j]

  It makes exactly ``n-1`` calls (bounds ``n, n-1, ..., 2``), none when ``n < 2``. Forward
  order means ``a[:k]`` is final after the first ``k`` steps: the winners are decided by
  the first ``supply`` calls. Result: ``winners = a[:supply]``, ``waitlist = a[supply:]``.
"""

from __future__ import annotations

import hashlib
import json
import operator
import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice, pairwise, repeat
from typing import Any, TypeVar

from dropserver.lottery.drbg import SEED_BYTES, TWO64, Drbg

ALGORITHM = "dropserver-draw-v1"
COMMIT_DOMAIN = b"dropserver-commit-v1"
RECEIPT_DOMAIN = b"dropserver-receipt-v1"
RECEIPT_LEN = 64

_HEX_DIGITS = "0123456789abcdef"
_HEX_AND_LF = b"0123456789abcdef\n"
_U64 = struct.Struct(">Q")
# Receipts are validated and hashed in slices this large: big enough that the per-slice
# work is done in C (join, encode, translate, sha256), small enough to bound memory.
_CHUNK = 1 << 16

T = TypeVar("T")


# --- seed and commitment -------------------------------------------------------------------


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    if len(seed) != SEED_BYTES:
        raise ValueError(f"seed must be {SEED_BYTES} bytes, got {len(seed)}")
    return hashlib.sha256(COMMIT_DOMAIN + seed).hexdigest()


# --- entry ids and receipts ----------------------------------------------------------------


def new_entry_id() -> str:
    return secrets.token_hex(16)


def _lp(data: bytes) -> bytes:
    return _U64.pack(len(data)) + data


def receipt(drop_id: str, entry_id: str) -> str:
    """The public receipt of an entry; the entrant can recompute it from their entry id."""
    msg = _lp(RECEIPT_DOMAIN) + _lp(drop_id.encode("utf-8")) + _lp(entry_id.encode("utf-8"))
    return hashlib.sha256(msg).hexdigest()


def is_receipt(value: object) -> bool:
    """True for a well-formed receipt: 64 lower-case hex characters."""
    return isinstance(value, str) and len(value) == RECEIPT_LEN and not value.strip(_HEX_DIGITS)


# --- entries digest ------------------------------------------------------------------------


def _receipt_lines(chunk: list[str]) -> bytes | None:
    """``r + "\\n"`` for each receipt as ASCII, or None if any is not a well-formed receipt.

    The check runs in C over the whole chunk (a per-item Python check costs 0.5 s per
    million): only hex digits and LFs, exactly n LFs, one after every 64 characters.
    Together that means n receipts of exactly 64 hex digits.
    """
    n = len(chunk)
    try:
        data = ("\n".join(chunk) + "\n").encode("ascii")
    except (UnicodeEncodeError, TypeError):  # not ASCII, or not all strings
        return None
    if (
        len(data) == n * (RECEIPT_LEN + 1)
        and not data.translate(None, _HEX_AND_LF)
        and data.count(b"\n") == n
        and data[RECEIPT_LEN :: RECEIPT_LEN + 1] == b"\n" * n
    ):
        return data
    return None


def all_receipts(items: list[str]) -> bool:
    """``all(map(is_receipt, items))``, about ten times faster for long lists of strings."""
    return all(
        _receipt_lines(items[i : i + _CHUNK]) is not None for i in range(0, len(items), _CHUNK)
    )


class EntriesHasher:
    """Incremental entries digest over receipts fed in canonical (strictly ascending) order.

    Raises ``ValueError`` on a malformed receipt, a duplicate or a receipt out of order, so a
    digest it returns always describes a canonical list. ``update_many`` is the fast path
    (about 0.1 s per million receipts); ``update`` is for one receipt at a time.
    """

    __slots__ = ("_hash", "_last", "count")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._last = ""  # sorts before every receipt
        self.count = 0

    def update(self, receipt: str) -> None:
        self._feed([receipt])

    def update_many(self, receipts: Iterable[str]) -> None:
        it = iter(receipts)
        while chunk := list(islice(it, _CHUNK)):
            self._feed(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def _feed(self, chunk: list[str]) -> None:
        data = _receipt_lines(chunk)
        if data is None:
            bad = next(r for r in chunk if not is_receipt(r))
            raise ValueError(f"malformed receipt {bad!r}: want 64 lower-case hex characters")
        if not (self._last < chunk[0] and all(map(operator.lt, chunk, islice(chunk, 1, None)))):
            prev, cur = _first_not_ascending([self._last, *chunk])
            what = "duplicate receipt" if prev == cur else "receipts not in ascending order"
            raise ValueError(f"{what}: {cur!r} after {prev!r}")
        self._hash.update(data)
        self._last = chunk[-1]
        self.count += len(chunk)


def _first_not_ascending(items: list[str]) -> tuple[str, str]:
    for prev, cur in pairwise(items):
        if not prev < cur:
            return prev, cur
    raise AssertionError("list is strictly ascending")


def canonical_order(receipts: Iterable[str]) -> list[str]:
    """The receipts sorted ascending (the order of the digest, the shuffle and the NDJSON)."""
    return sorted(receipts)


def entries_digest(receipts: Iterable[str]) -> str:
    """The entries digest of receipts given in any order (they are sorted first)."""
    hasher = EntriesHasher()
    hasher.update_many(canonical_order(receipts))
    return hasher.hexdigest()


# --- shuffle -------------------------------------------------------------------------------


def shuffle_in_place(items: list[T], drbg: Drbg) -> None:
    """Forward Fisher-Yates driven by ``drbg`` (see the module docstring).

    Equivalent to calling ``drbg.uniform_below(n - i)`` at each step, inlined because this
    is the hot loop of a million-entry draw. The exact rejection limit ``2**64 - 2**64 % m``
    is only needed when ``w >= 2**64 - n``: for every bound ``m <= n`` the limit is above
    that, so smaller words are always accepted and the modulo of ``2**64`` is skipped.
    """
    n = len(items)
    next_word = drbg.next_word
    always_ok = TWO64 - n
    for i in range(n - 1):
        m = n - i
        w = next_word()
        if w >= always_ok:
            limit = TWO64 - TWO64 % m
            while w >= limit:
                w = next_word()
        j = i + w % m
        items[i], items[j] = items[j], items[i]


def shuffle(
    receipts_sorted: list[str], *, seed: bytes, digest: str, beacon: str | None
) -> list[str]:
    """The draw order of receipts already in canonical order; returns a new list."""
    if not all(map(operator.lt, receipts_sorted, islice(receipts_sorted, 1, None))):
        raise ValueError("receipts must be sorted ascending without duplicates")
    order = list(receipts_sorted)
    shuffle_in_place(order, Drbg(seed, digest, beacon))
    return order


# --- proof ---------------------------------------------------------------------------------


class ProofFormatError(ValueError):
    """A proof document that does not have the proof schema."""


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as RFC 3339 with milliseconds, e.g. ``2024-05-01T12:00:00.000Z``."""
    if moment.tzinfo is None:
        raise ValueError("drawn_at must be timezone-aware")
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


@dataclass(slots=True, kw_only=True)
class Proof:
    """The published result of a draw. ``seed`` and ``drawn_at`` are None before the draw."""

    drop_id: str
    algorithm: str = ALGORITHM
    commitment: str
    seed: str | None = None
    entries_digest: str
    entry_count: int
    beacon: str | None = None
    supply: int
    winners: list[str] = field(default_factory=list)
    waitlist: list[str] = field(default_factory=list)
    drawn_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # Built by hand (not dataclasses.asdict) because asdict deep-copies the receipt
        # lists element by element, which is slow for a million entries.
        return {
            "drop_id": self.drop_id,
            "algorithm": self.algorithm,
            "commitment": self.commitment,
            "seed": self.seed,
            "entries_digest": self.entries_digest,
            "entry_count": self.entry_count,
            "beacon": self.beacon,
            "supply": self.supply,
            "winners": self.winners,
            "waitlist": self.waitlist,
            "drawn_at": self.drawn_at,
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """JSON text, compact unless ``indent`` is given (much slower for long lists)."""
        separators = (",", ":") if indent is None else None
        return json.dumps(self.to_dict(), indent=indent, separators=separators)

    @classmethod
    def from_json(cls, text: str | bytes) -> Proof:
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ProofFormatError(f"not valid JSON: {exc}") from None
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, obj: object) -> Proof:
        """Check the schema (names and types, not values) and build a proof.

        Unknown keys are ignored so that later versions may add informational fields.
        """
        if not isinstance(obj, dict):
            raise ProofFormatError("the proof must be a JSON object")
        problems = [
            msg for name, kind in _SCHEMA.items() if (msg := _field_problem(obj, name, kind))
        ]
        if problems:
            raise ProofFormatError("; ".join(problems))
        return cls(
            drop_id=obj["drop_id"],
            algorithm=obj["algorithm"],
            commitment=obj["commitment"],
            seed=obj["seed"],
            entries_digest=obj["entries_digest"],
            entry_count=obj["entry_count"],
            beacon=obj["beacon"],
            supply=obj["supply"],
            winners=obj["winners"],
            waitlist=obj["waitlist"],
            drawn_at=obj["drawn_at"],
        )


# name -> expected JSON type: "str", "int" (non-negative), "str?" (or null), "[str]"
_SCHEMA = {
    "drop_id": "str",
    "algorithm": "str",
    "commitment": "str",
    "seed": "str?",
    "entries_digest": "str",
    "entry_count": "int",
    "beacon": "str?",
    "supply": "int",
    "winners": "[str]",
    "waitlist": "[str]",
    "drawn_at": "str?",
}


def _field_problem(obj: dict[str, object], name: str, kind: str) -> str | None:
    if name not in obj:
        return f"field {name!r} is missing"
    value = obj[name]
    if kind == "str?" and value is None:
        return None
    if kind in ("str", "str?") and not isinstance(value, str):
        return f"field {name!r} must be a string{' or null' if kind == 'str?' else ''}"
    # bool is a subclass of int; true/false are not counts.
    if kind == "int" and (type(value) is not int or value < 0):
        return f"field {name!r} must be a non-negative integer"
    # map/repeat keeps the per-item check in C: a waitlist can hold a million receipts.
    if kind == "[str]" and not (
        isinstance(value, list) and all(map(isinstance, value, repeat(str)))
    ):
        return f"field {name!r} must be a list of strings"
    return None


def build_proof(
    drop_id: str,
    seed: bytes,
    receipts: Iterable[str],
    supply: int,
    beacon: str | None = None,
    drawn_at: datetime | str | None = None,
) -> Proof:
    """Run the draw and return its proof (receipts in any order; duplicates are an error)."""
    if supply < 0:
        raise ValueError("supply must be non-negative")
    ordered = canonical_order(receipts)
    hasher = EntriesHasher()
    hasher.update_many(ordered)  # also rejects malformed and duplicate receipts
    digest = hasher.hexdigest()
    order = ordered  # already canonical: shuffle in place instead of copying via shuffle()
    shuffle_in_place(order, Drbg(seed, digest, beacon))
    return Proof(
        drop_id=drop_id,
        algorithm=ALGORITHM,
        commitment=commitment(seed),
        seed=seed.hex(),
        entries_digest=digest,
        entry_count=len(order),
        beacon=beacon,
        supply=supply,
        winners=order[:supply],
        waitlist=order[supply:],
        drawn_at=rfc3339(drawn_at) if isinstance(drawn_at, datetime) else drawn_at,
    )

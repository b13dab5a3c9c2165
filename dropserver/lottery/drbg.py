"""Counter-mode DRBG on HMAC-SHA256: the only source of randomness in a draw.

Every byte below is part of the public draw format (anyone must be able to re-implement it
from this docstring alone), so changing any of it requires a new ``ALGORITHM`` version.

Notation: ``u64(x)`` is ``x`` as 8 bytes big-endian; ``lp(b) = u64(len(b)) || b`` (a length
prefix, so that adjacent fields cannot be spliced: moving bytes from one field to the next
changes a length).

Key::

    key = HMAC-SHA256(key=seed,
                      msg=lp(b"dropserver-draw-v1") || lp(digest) || lp(beacon))

where ``seed`` is the 32 secret bytes committed to at drop creation, ``digest`` is the 32 raw
bytes of the entries digest (not its hex form) and ``beacon`` is the UTF-8 encoding of the
public beacon string, or the empty string when there is no beacon (so an empty beacon is
not allowed: it would be indistinguishable from none).

Blocks and words: block ``i`` (``i = 0, 1, 2, ...``) is ``HMAC-SHA256(key, u64(i))``; each
32-byte block is read as four big-endian unsigned 64-bit words, and the word stream is
block 0 words 0..3, then block 1 words 0..3, and so on. Words are consumed strictly in that
order, one at a time, and a rejected word is simply discarded.

``uniform_below(n)`` for ``1 <= n <= 2**64``: let ``limit = 2**64 - (2**64 mod n)``, the
largest multiple of ``n`` not above ``2**64``. Take the next word ``w``; if ``w < limit``
return ``w mod n``, otherwise discard ``w`` and repeat. Every residue then has exactly
``limit / n`` accepted preimages, so there is no modulo bias. A word is rejected with
probability ``(2**64 mod n) / 2**64 < n / 2**64``: below 6e-14 for a million entrants, and
at most about 1/2 (for ``n`` just above ``2**63``), so the expected number of words per
call is below 2. Every call consumes at least one word, even ``uniform_below(1)``.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Iterator
from itertools import chain

DRAW_DOMAIN = b"dropserver-draw-v1"
SEED_BYTES = 32
TWO64 = 1 << 64

_U64 = struct.Struct(">Q")
_SHA256_BLOCK = 64  # bytes; HMAC pads or hashes the key to this size
# Blocks are computed in batches and unpacked with one struct call: this keeps the per-word
# cost to one generator step. Batching is invisible in the output (the counter is the same).
_BATCH_BLOCKS = 64
_BATCH = struct.Struct(">" + "Q" * (4 * _BATCH_BLOCKS))


def _lp(data: bytes) -> bytes:
    return _U64.pack(len(data)) + data


def derive_key(seed: bytes, digest: str, beacon: str | None) -> bytes:
    """The DRBG key for a draw (see the module docstring for the exact bytes)."""
    if len(seed) != SEED_BYTES:
        raise ValueError(f"seed must be {SEED_BYTES} bytes, got {len(seed)}")
    raw_digest = _digest_bytes(digest)
    if beacon == "":
        raise ValueError("beacon must be None or a non-empty string")
    beacon_bytes = b"" if beacon is None else beacon.encode("utf-8")
    msg = _lp(DRAW_DOMAIN) + _lp(raw_digest) + _lp(beacon_bytes)
    return hmac.digest(seed, msg, "sha256")


def _digest_bytes(digest: str) -> bytes:
    # Lower-case only: the digest is hex text in published files, and one canonical spelling
    # means two verifiers can never disagree about which bytes went into the key.
    if len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise ValueError("entries digest must be 64 lower-case hex characters")
    return bytes.fromhex(digest)


def _block_batches(key: bytes) -> Iterator[bytes]:
    """Blocks 0, 1, 2, ... concatenated, ``_BATCH_BLOCKS`` blocks per item.

    HMAC-SHA256 is computed from its definition, ``H((K ^ opad) || H((K ^ ipad) || m))``,
    with both keyed hash states prepared once and copied per block: going through the hmac
    module's Python wrapper costs about as much again as the hashing. The tests check the
    blocks against ``hmac.digest``.
    """
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_SHA256_BLOCK, b"\0")
    inner_copy = hashlib.sha256(bytes(b ^ 0x36 for b in padded)).copy
    outer_copy = hashlib.sha256(bytes(b ^ 0x5C for b in padded)).copy
    pack = _U64.pack
    counter = 0
    while True:
        blocks = []
        for i in range(counter, counter + _BATCH_BLOCKS):
            inner = inner_copy()
            inner.update(pack(i))
            outer = outer_copy()
            outer.update(inner.digest())
            blocks.append(outer.digest())
        counter += _BATCH_BLOCKS
        yield b"".join(blocks)


def _words(key: bytes) -> Iterator[int]:
    # chain/map keep the per-word step in C; Python code runs once per batch only.
    return chain.from_iterable(map(_BATCH.unpack, _block_batches(key)))


class Drbg:
    """The deterministic random stream of one draw.

    ``next_word`` returns the next 64-bit word; it is a plain attribute (the bound
    ``__next__`` of the word generator) so hot loops can bind it to a local once.
    """

    __slots__ = ("next_word",)

    next_word: Callable[[], int]

    def __init__(self, seed: bytes, digest: str, beacon: str | None) -> None:
        self.next_word = _words(derive_key(seed, digest, beacon)).__next__

    @classmethod
    def from_key(cls, key: bytes) -> Drbg:
        """A stream from an already derived key (for tests and other domains)."""
        drbg = cls.__new__(cls)
        drbg.next_word = _words(key).__next__
        return drbg

    def uniform_below(self, n: int) -> int:
        """A uniform integer in ``[0, n)``, by rejection sampling (no modulo bias)."""
        if not 1 <= n <= TWO64:
            raise ValueError(f"n must be in [1, 2**64], got {n}")
        limit = TWO64 - TWO64 % n
        next_word = self.next_word
        w = next_word()
        while w >= limit:
            w = next_word()
        return w % n

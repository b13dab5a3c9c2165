"""Key derivation functions of the ALTCHA v2 proof-of-work, byte-compatible with the widget.

The puzzle: find the ``counter`` such that ``KDF(password=nonce || uint32_be(counter), salt)``
starts with the published ``keyPrefix``. Both the server (once per challenge, ahead of time,
in :mod:`dropserver.pow.pool`) and the solver (once per counter tried) run these functions.

``hashlib.pbkdf2_hmac`` and ``hashlib.scrypt`` release the GIL; the iterated SHA loop runs in
Python and holds it, which is why the server's pool derives in worker processes. SHA-256 is
only offered for compatibility (it is the weakest of the three against GPUs).
"""

from __future__ import annotations

import hashlib
from typing import Final

PBKDF2_SHA256: Final = "PBKDF2/SHA-256"
SHA256: Final = "SHA-256"
SCRYPT: Final = "SCRYPT"

#: The algorithm names we implement, spelled as on the wire.
ALGORITHMS: Final = frozenset({PBKDF2_SHA256, SHA256, SCRYPT})

#: scrypt defaults when a challenge leaves ``memoryCost`` / ``parallelism`` out (ALTCHA's).
SCRYPT_DEFAULT_R: Final = 8
SCRYPT_DEFAULT_P: Final = 1

_UINT32_MAX: Final = 0xFFFF_FFFF
# hashlib.scrypt refuses maxmem above INT_MAX.
_SCRYPT_MAXMEM_LIMIT: Final = 2**31 - 1


def password(nonce: bytes, counter: int) -> bytes:
    """The KDF password: ``nonce || uint32_be(counter)`` (ALTCHA ``counterMode='uint32'``)."""
    if not 0 <= counter <= _UINT32_MAX:
        raise ValueError(f"counter must be in [0, 2**32-1], got {counter}")
    return nonce + counter.to_bytes(4, "big")


def scrypt_maxmem(n: int, r: int, p: int) -> int:
    """Memory scrypt needs for these parameters, with headroom.

    OpenSSL needs ``128*r*(N+2)`` bytes for V plus ``128*r*p`` for B; hashlib's default cap
    (32 MiB) is too small for N=65536, r=8 (64 MiB), so we always pass an explicit cap.
    """
    need = 128 * r * (n + p + 2)
    return min(2 * need + (1 << 20), _SCRYPT_MAXMEM_LIMIT)


def derive_key(
    algorithm: str,
    password: bytes,
    salt: bytes,
    cost: int,
    key_length: int,
    memory_cost: int | None = None,
    parallelism: int | None = None,
) -> bytes:
    """Derive ``key_length`` bytes from ``password`` and ``salt`` with an ALTCHA v2 algorithm.

    - ``PBKDF2/SHA-256``: ``pbkdf2_hmac('sha256', password, salt, iterations=cost)``.
    - ``SHA-256``: ``h = SHA256(salt || password)``, then ``cost - 1`` times ``h = SHA256(h)``,
      truncated to ``key_length`` (at most 32 bytes).
    - ``SCRYPT``: ``N = cost``, ``r = memory_cost`` (default 8), ``p = parallelism`` (default 1).

    Raises ``ValueError`` for an unknown algorithm or out-of-range parameters.
    """
    if cost < 1:
        raise ValueError(f"cost must be >= 1, got {cost}")
    if key_length < 1:
        raise ValueError(f"key_length must be >= 1, got {key_length}")
    if algorithm == PBKDF2_SHA256:
        return hashlib.pbkdf2_hmac("sha256", password, salt, cost, key_length)
    if algorithm == SHA256:
        if key_length > 32:
            raise ValueError("SHA-256 yields at most 32 bytes; key_length must be <= 32")
        sha256 = hashlib.sha256
        digest = sha256(salt + password).digest()
        for _ in range(cost - 1):
            digest = sha256(digest).digest()
        return digest[:key_length]
    if algorithm == SCRYPT:
        r = SCRYPT_DEFAULT_R if memory_cost is None else memory_cost
        p = SCRYPT_DEFAULT_P if parallelism is None else parallelism
        return hashlib.scrypt(
            password,
            salt=salt,
            n=cost,
            r=r,
            p=p,
            maxmem=scrypt_maxmem(cost, r, p),
            dklen=key_length,
        )
    raise ValueError(f"unsupported algorithm {algorithm!r}; expected one of {sorted(ALGORITHMS)}")

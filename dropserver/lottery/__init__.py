"""Verifiable lottery draws and fair-start ordering (pure computation: no Redis, no I/O loop).

The verifier is exported lazily (``verify_draw``, ``VerifyResult``, ``verify_main``): importing
``dropserver.lottery.verify`` here would make ``python -m dropserver.lottery.verify`` warn that
the module was already imported before it ran as ``__main__``. (The function ``verify`` is
exported as ``verify_draw`` because ``dropserver.lottery.verify`` is the module.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dropserver.lottery.draw import (
    ALGORITHM,
    EntriesHasher,
    Proof,
    ProofFormatError,
    all_receipts,
    build_proof,
    canonical_order,
    commitment,
    entries_digest,
    is_receipt,
    new_entry_id,
    new_seed,
    receipt,
    rfc3339,
    shuffle,
    shuffle_in_place,
)
from dropserver.lottery.drbg import Drbg, derive_key
from dropserver.lottery.ndjson import EntriesFile, format_entries, parse_entries, write_entries

if TYPE_CHECKING:
    from dropserver.lottery.verify import VerifyResult
    from dropserver.lottery.verify import main as verify_main
    from dropserver.lottery.verify import verify as verify_draw

__all__ = [
    "ALGORITHM",
    "Drbg",
    "EntriesFile",
    "EntriesHasher",
    "Proof",
    "ProofFormatError",
    "VerifyResult",
    "all_receipts",
    "build_proof",
    "canonical_order",
    "commitment",
    "derive_key",
    "entries_digest",
    "format_entries",
    "is_receipt",
    "new_entry_id",
    "new_seed",
    "parse_entries",
    "receipt",
    "rfc3339",
    "shuffle",
    "shuffle_in_place",
    "verify_draw",
    "verify_main",
    "write_entries",
]

_LAZY = {"VerifyResult": "VerifyResult", "verify_draw": "verify", "verify_main": "main"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from dropserver.lottery import verify as module

        return getattr(module, _LAZY[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

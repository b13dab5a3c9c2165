"""Reproducible rehearsals: a configured ``[rehearsal] seed`` fixes every draw seed and entry id.

A real drop's draw seed is secret and random, and entry ids are random, so two runs never draw
alike. A rehearsal in CI must be reproducible (never flaky): with a rehearsal seed, the draw
seed of a drop and the entry id of a person are derived from it (HMAC-SHA256), so the same
crowd gives the same draw. Never set it for a real drop: anyone who knows it can predict the
draw. The server logs a warning when it is set.
"""

from __future__ import annotations

import hashlib
import hmac

from dropserver.ids import random_hex128


def _derive(seed: bytes, *parts: str) -> bytes:
    return hmac.new(seed, "\0".join(parts).encode(), hashlib.sha256).digest()


def draw_seed(rehearsal_seed: bytes, drop_id: str) -> bytes:
    return _derive(rehearsal_seed, "draw-seed", drop_id)


def new_entry_id(rehearsal_seed: bytes | None, drop_id: str, person: str) -> str:
    """128 random bits; derived from the rehearsal seed when one is set."""
    if rehearsal_seed is None:
        return random_hex128()
    return _derive(rehearsal_seed, "entry-id", drop_id, person)[:16].hex()

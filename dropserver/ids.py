"""Unguessable ids, cheaply: 128-bit values from the OS CSPRNG, read in blocks.

``secrets.token_hex`` makes one getrandom() system call per id; at a drop's opening that is a
measurable share of a purchase's CPU. Reading 4 KiB at a time gives the same randomness (the
same os.urandom source) for a 256th of the system calls. The block is consumed once; no byte
is ever handed out twice.
"""

from __future__ import annotations

import os

_BLOCK = 4096
_buffer = b""
_offset = _BLOCK


def random_hex128() -> str:
    global _buffer, _offset
    if _offset >= len(_buffer):
        _buffer, _offset = os.urandom(_BLOCK), 0
    chunk = _buffer[_offset : _offset + 16]
    _offset += 16
    return chunk.hex()

"""Unguessable ids, cheaply: 128-bit values from the OS CSPRNG, read in blocks.

``secrets.token_hex`` makes one getrandom() system call per id; at a drop's opening that is a
measurable share of a purchase's CPU. Reading 4 KiB at a time gives the same randomness (the
same os.urandom source) for a 256th of the system calls. The block is consumed once; no byte
is ever handed out twice.
"""

from __future__ import annotations

import base64
import os

_BLOCK = 4096
_buffer = b""
_offset = _BLOCK


def random_bytes128() -> bytes:
    """16 bytes from the OS CSPRNG, taken from the current block."""
    global _buffer, _offset
    if _offset >= len(_buffer):
        _buffer, _offset = os.urandom(_BLOCK), 0
    chunk = _buffer[_offset : _offset + 16]
    _offset += 16
    return chunk


def random_hex128() -> str:
    return random_bytes128().hex()


def random_token128() -> str:
    """The same as ``secrets.token_urlsafe(16)``: 22 URL-safe base64 characters."""
    return base64.urlsafe_b64encode(random_bytes128()).rstrip(b"=").decode()


def _forget_block() -> None:
    """A forked child must not hand out the bytes its parent will hand out too."""
    global _buffer, _offset
    _buffer, _offset = b"", _BLOCK


os.register_at_fork(after_in_child=_forget_block)

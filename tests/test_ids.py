from __future__ import annotations

import os
import re

from dropserver.ids import random_bytes128, random_hex128, random_token128


def test_ids_are_128_bit_hex_and_never_repeat() -> None:
    ids = [random_hex128() for _ in range(20_000)]  # crosses many 4 KiB blocks
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == len(ids)


def test_tokens_look_like_token_urlsafe_16() -> None:
    tokens = [random_token128() for _ in range(1_000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", t) for t in tokens)
    assert len(set(tokens)) == len(tokens)


def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    random_bytes128()  # the parent holds a block with bytes left in it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next 16 bytes and leave at once
        os.write(write, random_bytes128())
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16 and child != random_bytes128()

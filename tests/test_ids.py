"""aigateway/core/ids.py: unique ids without a system call each, distinct across forks."""

from __future__ import annotations

import os
import re

from aigateway.core.ids import unique_hex


def test_ids_look_like_uuid4_hex_and_do_not_repeat() -> None:
    ids = {unique_hex() for _ in range(100_000)}
    assert len(ids) == 100_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in list(ids)[:100])


def test_a_forked_child_does_not_repeat_its_parents_sequence() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, unique_hex().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child != unique_hex()

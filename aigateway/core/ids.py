"""Identifiers that must be unique, not secret: request ids, concurrency-lease members.

``uuid.uuid4()`` reads ``os.urandom`` (a system call) per id; an API call made three, and
under load they showed up as ~3 % of a worker's event loop (py-spy, S2). A process-local
generator seeded from ``os.urandom`` gives the same 128 bits of uniqueness without the call.
It is reseeded in forked children (Celery's prefork pool), which would otherwise repeat
their parent's sequence.
"""

from __future__ import annotations

import os
import random

_random = random.Random()


def _reseed() -> None:
    _random.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def unique_hex() -> str:
    """32 lower-case hex digits, like ``uuid.uuid4().hex``."""
    return f"{_random.getrandbits(128):032x}"

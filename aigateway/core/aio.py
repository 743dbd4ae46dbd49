"""Small asyncio helpers shared by the stream relays."""

from __future__ import annotations

import contextlib
from typing import Any


async def aclose_quietly(iterator: Any) -> None:
    """Close an async iterator now (its upstream connection is dropped), not whenever the
    garbage collector finalizes it: the upstream must stop generating what nobody reads.
    A failure while closing is not the caller's concern (the stream is being abandoned)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()

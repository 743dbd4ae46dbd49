"""Where cached answers live: Redis (shared by every process) or in process (LRU, for the
single-process default). Both expire entries by TTL and cap the number of entries."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Protocol

from django.conf import settings

from aigateway.core.redis import get_async_redis
from aigateway.core.redis_pipe import pipelined_for

logger = logging.getLogger(__name__)
PREFIX = "aigw:cache:"


class AnswerStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: int) -> None: ...

    async def purge(self, prefix: str) -> int: ...


class InProcessAnswerStore:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                return None
            expires, value = item
            if expires <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > settings.AIGATEWAY_CACHE_MAX_ENTRIES:
                self._entries.popitem(last=False)  # least recently used

    async def purge(self, prefix: str) -> int:
        with self._lock:
            doomed = [k for k in self._entries if k.startswith(prefix)]
            for key in doomed:
                del self._entries[key]
            return len(doomed)


class RedisAnswerStore:
    """Entries expire by TTL; at capacity Redis evicts by its own policy (run the cache on a
    Redis with maxmemory-policy allkeys-lru or volatile-lru, see docs/caching.md)."""

    # get and set ride the hot path's pipelined connection (aigateway/core/redis_pipe.py)
    # where there is one: a cache hit is two Redis calls (limiter, answer), both cheap.
    async def get(self, key: str) -> bytes | None:
        client = get_async_redis()
        assert client is not None
        pipelined = pipelined_for(client)
        value = await (pipelined.execute("GET", key) if pipelined else client.get(key))
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        client = get_async_redis()
        assert client is not None
        pipelined = pipelined_for(client)
        if pipelined is not None:
            await pipelined.execute("SET", key, value, "EX", ttl)
        else:
            await client.set(key, value, ex=ttl)

    async def purge(self, prefix: str) -> int:
        client = get_async_redis()
        assert client is not None
        removed = 0
        async for key in client.scan_iter(match=prefix + "*", count=500):
            removed += await client.delete(key)
        return removed


_local = InProcessAnswerStore()


def answer_store() -> AnswerStore:
    return RedisAnswerStore() if get_async_redis() is not None else _local

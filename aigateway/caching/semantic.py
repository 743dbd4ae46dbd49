"""Semantic cache: answer a prompt with a cached answer to a near-identical earlier prompt.

- Namespace: the tenant scope and route (as the exact cache) plus the hash of everything
  but the last user turn (system prompt, earlier turns, tools, parameters), so a follow-up
  like "and in Python?" only matches inside the same conversation context.
- Index: per namespace one normalized float32 matrix; a lookup is one matrix-vector product
  and an argmax (numpy), never a Python loop over entries.
- Shared: with Redis, entries (vector + answer) live in Redis and each process keeps its
  matrix in sync incrementally (a sequence number per namespace; a lookup that sees a newer
  sequence fetches only the new entries). Capacity per namespace is enforced in Redis
  (oldest out), answers expire by TTL; an entry whose answer is gone is dropped lazily.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from aigateway.core.redis import get_async_redis

PREFIX = "aigw:cache:s:"
DIM = 384

# KEYS: seq, ids (zset), vectors (hash), answer; ARGV: id, vector, answer, ttl, max_entries,
# answer key prefix (evicted entries' answers go too, so no process can still serve them)
ADD = """
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('SET', KEYS[4], ARGV[3], 'EX', tonumber(ARGV[4]))
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  redis.call('HDEL', KEYS[3], unpack(old))
  for _, id in ipairs(old) do redis.call('DEL', ARGV[6] .. id) end
end
return seq
"""


@dataclass
class NamespaceIndex:
    """The matrix of one namespace in this process: rows in a buffer that doubles when full
    (adding is amortised O(1), never a copy of the whole matrix per entry)."""

    ids: list[str] = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # insertion number of each row
    added: int = 0
    data: np.ndarray = field(default_factory=lambda: np.zeros((16, DIM), dtype=np.float32))
    synced_seq: int = 0
    answers: dict[str, tuple[float, bytes]] = field(default_factory=dict)  # in-process mode

    @property
    def matrix(self) -> np.ndarray:
        return self.data[: len(self.ids)]

    def add(self, entry_id: str, vector: np.ndarray) -> None:
        if len(self.ids) == len(self.data):
            grown = np.zeros((len(self.data) * 2, DIM), dtype=np.float32)
            grown[: len(self.ids)] = self.data
            self.data = grown
        self.data[len(self.ids)] = vector
        self.ids.append(entry_id)
        self.order.append(self.added)
        self.added += 1

    def remove(self, entry_id: str) -> None:
        """Swap the last row into the hole: O(1)."""
        if entry_id not in self.ids:
            return
        index, last = self.ids.index(entry_id), len(self.ids) - 1
        self.data[index] = self.data[last]
        self.ids[index] = self.ids[last]
        self.order[index] = self.order[last]
        self.ids.pop()
        self.order.pop()

    def search(self, vector: np.ndarray) -> tuple[str, float] | None:
        if not self.ids:
            return None
        scores = self.matrix @ vector.astype(np.float32)
        best = int(np.argmax(scores))
        return self.ids[best], float(scores[best])

    def trim(self, max_entries: int) -> None:
        """Keep the newest ``max_entries`` (in-process mode; Redis trims on add)."""
        excess = len(self.ids) - max_entries
        if excess <= 0:
            return
        keep = np.sort(np.argsort(np.asarray(self.order))[excess:])  # drop the oldest rows
        for row in np.argsort(np.asarray(self.order))[:excess]:
            self.answers.pop(self.ids[int(row)], None)
        self.data[: len(keep)] = self.data[keep]
        self.ids = [self.ids[int(row)] for row in keep]
        self.order = [self.order[int(row)] for row in keep]


_indexes: dict[str, NamespaceIndex] = {}
_lock = threading.Lock()


def _index(namespace: str) -> NamespaceIndex:
    with _lock:
        return _indexes.setdefault(namespace, NamespaceIndex())


def _keys(namespace: str, entry_id: str = "") -> list[str]:
    base = PREFIX + namespace
    return [f"{base}:seq", f"{base}:ids", f"{base}:vec", f"{base}:a:{entry_id}"]


async def _sync(namespace: str, index: NamespaceIndex) -> None:
    client = get_async_redis()
    if client is None:
        return
    seq_key, ids_key, vec_key, _ = _keys(namespace)
    seq = int(await client.get(seq_key) or 0)
    if seq <= index.synced_seq:
        return
    new = await client.zrangebyscore(ids_key, index.synced_seq + 1, seq)
    if new:
        ids = [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in new]
        vectors: list[bytes | None] = await client.hmget(vec_key, ids)  # type: ignore[assignment]
        for entry_id, blob in zip(ids, vectors, strict=True):
            if blob is not None:
                index.add(entry_id, np.frombuffer(blob, dtype=np.float32))
    index.synced_seq = seq


async def semantic_search(namespace: str, vector: np.ndarray) -> tuple[bytes, float] | None:
    """The best cached answer's bytes and similarity, or None."""
    index = _index(namespace)
    await _sync(namespace, index)
    client = get_async_redis()
    for _ in range(3):  # skip entries whose answers expired or were evicted
        found = index.search(vector)
        if found is None:
            return None
        entry_id, score = found
        raw: bytes | None
        if client is None:
            expires, answer = index.answers.get(entry_id, (0.0, b""))
            raw = answer if expires > time.monotonic() else None
        else:
            raw = await client.get(_keys(namespace, entry_id)[3])  # type: ignore[assignment]
        if raw is not None:
            return raw, score
        index.remove(entry_id)
    return None


async def semantic_add(namespace: str, vector: np.ndarray, answer: bytes, ttl: int) -> None:
    entry_id = uuid.uuid4().hex
    blob = vector.astype(np.float32).tobytes()
    client = get_async_redis()
    max_entries = settings.AIGATEWAY_SEMANTIC_MAX_ENTRIES
    if client is None:
        index = _index(namespace)
        index.add(entry_id, vector)
        index.answers[entry_id] = (time.monotonic() + ttl, answer)
        index.trim(max_entries)
        return
    keys = _keys(namespace, entry_id)
    answer_prefix = keys[3].removesuffix(entry_id)
    await client.eval(ADD, 4, *keys, entry_id, blob, answer, ttl, max_entries, answer_prefix)


_embedder_lock = threading.Lock()
_embedder = None


async def embed_prompt(text: str) -> np.ndarray:
    """Embedding of one prompt off the event loop (CPU-bound, ~5 ms; numpy frees the GIL)."""
    global _embedder
    if _embedder is None:
        with _embedder_lock:
            if _embedder is None:
                from aigateway.caching.embedder import LocalEmbedder

                _embedder = LocalEmbedder()
    embedder = _embedder
    return await asyncio.to_thread(embedder.embed_one, text)


async def semantic_purge(namespace_prefix: str) -> int:
    """Drop the semantic entries of namespaces starting with ``namespace_prefix`` (a tenant,
    optionally one route). Sequence counters stay, so other processes keep syncing."""
    removed = 0
    with _lock:
        doomed = [ns for ns in _indexes if ns.startswith(namespace_prefix)]
        for ns in doomed:
            removed += len(_indexes.pop(ns).answers)
    client = get_async_redis()
    if client is None:
        return removed
    removed = 0
    async for key in client.scan_iter(match=PREFIX + namespace_prefix + "*", count=500):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name.endswith(":seq"):
            continue
        removed += int(":a:" in name)
        await client.delete(name)
    return removed

"""Recent latency per deployment (exponentially weighted moving average), for the
lowest-latency strategy. Shared through Redis when configured, else in process."""

from __future__ import annotations

import logging
import weakref
from typing import Any

from aigateway.core.redis import get_async_redis
from aigateway.core.redis_pipe import register_script

logger = logging.getLogger(__name__)
KEY = "aigw:latency"
ALPHA = 0.3  # weight of the newest measurement

# KEYS[1] hash; ARGV: field, sample, alpha
UPDATE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
local new = tonumber(ARGV[2])
if old then new = tonumber(ARGV[3]) * new + (1 - tonumber(ARGV[3])) * tonumber(old) end
redis.call('HSET', KEYS[1], ARGV[1], tostring(new))
return tostring(new)
"""

_local: dict[int, float] = {}
# The registered script per Redis client: EVALSHA sends its SHA-1, not the whole script.
_update_scripts: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


async def latency_record(deployment_id: int | None, milliseconds: float) -> None:
    if deployment_id is None:
        return
    client = get_async_redis()
    if client is None:
        old = _local.get(deployment_id)
        _local[deployment_id] = (
            milliseconds if old is None else ALPHA * milliseconds + (1 - ALPHA) * old
        )
        return
    script = _update_scripts.get(client)
    if script is None:
        script = _update_scripts[client] = register_script(client, UPDATE)
    try:
        await script(keys=[KEY], args=[str(deployment_id), milliseconds, ALPHA])
    except Exception:  # noqa: BLE001 - a missed sample only affects ordering
        logger.warning("could not record latency in Redis")


async def latency_snapshot(deployment_ids: list[int | None]) -> dict[int | None, float]:
    ids = [d for d in deployment_ids if d is not None]
    client = get_async_redis()
    if client is None:
        return {d: _local[d] for d in ids if d in _local}
    try:
        values = await client.hmget(KEY, [str(d) for d in ids])
    except Exception:  # noqa: BLE001 - fall back to configured order
        logger.warning("could not read latencies from Redis")
        return {}
    return {d: float(v) for d, v in zip(ids, values, strict=True) if v is not None}

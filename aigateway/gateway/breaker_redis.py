"""The circuit breaker in Redis: one hash per deployment, each operation one Lua script, so
a transition is atomic across every process. Mirrors InProcessBreakerStore exactly."""

from __future__ import annotations

import math

import redis.asyncio as aioredis

from aigateway.core.redis_pipe import register_script
from aigateway.gateway.breaker import (
    BUCKETS,
    BreakerConfig,
    BreakerState,
    Decision,
    Transition,
)

KEY = "aigw:breaker:{}"
TTL_SECONDS = 7 * 24 * 3600  # forget breakers of deployments that no longer get traffic

# KEYS[1] breaker hash; ARGV: now, recovery_seconds, probe_timeout
ALLOW = """
local k = KEYS[1]
local now = tonumber(ARGV[1])
local function num(x) return string.format('%.17g', x) end  -- tostring() keeps 14 digits
local forced = redis.call('HGET', k, 'forced')
if forced == 'open' then return {'reject'} end
local state = redis.call('HGET', k, 'state') or 'closed'
if forced == 'closed' or state == 'closed' then return {'allow'} end
if state == 'open' then
  local opened = tonumber(redis.call('HGET', k, 'opened_at') or '0')
  if now < opened + tonumber(ARGV[2]) then return {'reject'} end
  redis.call('HSET', k, 'state', 'half_open', 'probe_until', num(now + tonumber(ARGV[3])))
  return {'probe', 'open', 'half_open', 'recovery timeout elapsed; admitting one probe'}
end
local probe_until = tonumber(redis.call('HGET', k, 'probe_until') or '0')
if now < probe_until then return {'reject'} end
redis.call('HSET', k, 'probe_until', num(now + tonumber(ARGV[3])))
return {'probe'}
"""

# KEYS[1] breaker hash; ARGV: now, ok (1/0), failures, failure_rate, min_requests,
# bucket_seconds, buckets, ttl, count (outcomes of the same kind recorded at once)
RECORD = """
local k = KEYS[1]
local now = tonumber(ARGV[1])
local ok = ARGV[2] == '1'
local function num(x) return string.format('%.17g', x) end  -- tostring() keeps 14 digits
local buckets = tonumber(ARGV[7])
local bucket = math.floor(now / tonumber(ARGV[6]))
redis.call('HINCRBY', k, (ok and 'ok:' or 'fail:') .. bucket, tonumber(ARGV[9] or '1'))
redis.call('EXPIRE', k, tonumber(ARGV[8]))
local ok_sum, fail_sum = 0, 0
local fields = redis.call('HGETALL', k)
for i = 1, #fields, 2 do
  local kind, b = string.match(fields[i], '^(%a+):(%-?%d+)$')
  if kind then
    b = tonumber(b)
    if b <= bucket - buckets then
      redis.call('HDEL', k, fields[i])
    elseif kind == 'ok' then ok_sum = ok_sum + tonumber(fields[i + 1])
    else fail_sum = fail_sum + tonumber(fields[i + 1]) end
  end
end
local function clear_window()
  for i = 1, #fields, 2 do
    if string.match(fields[i], '^%a+:%-?%d+$') then redis.call('HDEL', k, fields[i]) end
  end
end
if redis.call('HGET', k, 'forced') then return {} end
local state = redis.call('HGET', k, 'state') or 'closed'
if ok then
  redis.call('HSET', k, 'consecutive', 0)
  if state == 'half_open' then
    clear_window()
    redis.call('HSET', k, 'state', 'closed')
    return {'half_open', 'closed', 'probe succeeded'}
  end
  return {}
end
local consecutive = redis.call('HINCRBY', k, 'consecutive', 1)
if state == 'half_open' then
  redis.call('HSET', k, 'state', 'open', 'opened_at', num(now))
  return {'half_open', 'open', 'probe failed'}
end
if state ~= 'closed' then return {} end
local reason = nil
if consecutive >= tonumber(ARGV[3]) then
  reason = consecutive .. ' consecutive failures'
else
  local total = ok_sum + fail_sum
  if total >= tonumber(ARGV[5]) and fail_sum / total >= tonumber(ARGV[4]) then
    local percent = math.floor(fail_sum * 100 / total + 0.5)
    reason = string.format('failure rate %d%% over %d calls', percent, total)
  end
end
if reason then
  redis.call('HSET', k, 'state', 'open', 'opened_at', num(now))
  return {'closed', 'open', reason}
end
return {}
"""

# KEYS[1] breaker hash; ARGV: mode (open | closed | reset)
FORCE = """
local k = KEYS[1]
local function effective()
  local forced = redis.call('HGET', k, 'forced')
  if forced then return 'forced_' .. forced end
  return redis.call('HGET', k, 'state') or 'closed'
end
local before = effective()
if ARGV[1] == 'reset' then redis.call('DEL', k) else redis.call('HSET', k, 'forced', ARGV[1]) end
return {before, effective()}
"""


# KEYS: breaker hashes. 1 for each breaker ALLOW would answer 'allow' (closed, or forced
# closed), else 0. Read-only: unlike ALLOW it never turns an open breaker half-open.
CLOSED = """
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('HMGET', k, 'forced', 'state')
  local forced, state = v[1], v[2] or 'closed'
  if forced ~= 'open' and (forced == 'closed' or state == 'closed') then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# KEYS[1] breaker hash
RELEASE_PROBE = """
if redis.call('HGET', KEYS[1], 'state') == 'half_open' then
  redis.call('HSET', KEYS[1], 'probe_until', '0')
end
return 1
"""


class RedisBreakerStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        # Over the hot path's pipelined connection (aigateway/core/redis_pipe.py).
        self._allow = register_script(client, ALLOW)
        self._record = register_script(client, RECORD)
        self._force = register_script(client, FORCE)
        self._release_probe = register_script(client, RELEASE_PROBE)
        self._closed = register_script(client, CLOSED)

    async def allow(
        self, deployment_id: int, now: float, cfg: BreakerConfig
    ) -> tuple[Decision, Transition | None]:
        result = await self._allow(
            keys=[KEY.format(deployment_id)], args=[now, cfg.recovery_seconds, cfg.probe_timeout]
        )
        decision = Decision(_text(result[0]))
        transition = None
        if len(result) == 4:
            transition = Transition(deployment_id, *(_text(v) for v in result[1:]))
        return decision, transition

    async def record(
        self, deployment_id: int, now: float, ok: bool, cfg: BreakerConfig, count: int = 1
    ) -> Transition | None:
        result = await self._record(
            keys=[KEY.format(deployment_id)],
            args=[
                now, 1 if ok else 0, cfg.failures, cfg.failure_rate, cfg.min_requests,
                cfg.bucket_seconds, BUCKETS, TTL_SECONDS, count,
            ],
        )  # fmt: skip
        if not result:
            return None
        return Transition(deployment_id, *(_text(v) for v in result))

    async def closed_among(self, deployment_ids: list[int]) -> set[int]:
        """Which of these breakers are closed (or forced closed), in one read-only call."""
        if not deployment_ids:
            return set()
        flags = await self._closed(keys=[KEY.format(d) for d in deployment_ids])
        return {d for d, flag in zip(deployment_ids, flags, strict=True) if int(flag)}

    async def release_probe(self, deployment_id: int) -> None:
        await self._release_probe(keys=[KEY.format(deployment_id)])

    async def force(self, deployment_id: int, mode: str) -> Transition:
        before, after = await self._force(keys=[KEY.format(deployment_id)], args=[mode])
        return Transition(deployment_id, _text(before), _text(after), f"forced {mode}")

    async def snapshot(self, deployment_id: int, now: float, cfg: BreakerConfig) -> BreakerState:
        raw = await self.client.hgetall(KEY.format(deployment_id))
        fields = {_text(k): _text(v) for k, v in raw.items()}
        bucket = math.floor(now / cfg.bucket_seconds)  # as RECORD does; // can differ
        window = {"ok": 0, "fail": 0}
        for name, value in fields.items():
            kind, _, index = name.partition(":")
            if kind in window and index.lstrip("-").isdigit() and int(index) > bucket - BUCKETS:
                window[kind] += int(value)
        forced = fields.get("forced")
        return BreakerState(
            state=f"forced_{forced}" if forced else fields.get("state", "closed"),
            consecutive_failures=int(fields.get("consecutive", 0)),
            window_ok=window["ok"],
            window_failed=window["fail"],
            opened_at=float(fields.get("opened_at", 0)),
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

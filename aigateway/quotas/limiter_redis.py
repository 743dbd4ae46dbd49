"""The limiter in Redis: all checks of a request are evaluated and taken by ONE Lua script
(one round trip, all-or-nothing), so limits are exact across any number of processes.
Mirrors InProcessLimiter; the clock is passed in, so tests control it."""

from __future__ import annotations

import weakref

import redis.asyncio as aioredis

from aigateway.core.redis_pipe import register_script
from aigateway.quotas.checks import Check, CheckResult, Verdict
from aigateway.quotas.limiter import Adjustment

FIELDS = 7  # per check in ARGV: type, cost, limit, capacity, rate, ttl, member

COMMON = """
local now = tonumber(ARGV[1])
local function num(x) return string.format('%.17g', x) end
local function bucket_tokens(key, capacity, rate)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = tonumber(state[1]), tonumber(state[2])
  if tokens == nil then return capacity end
  return math.min(capacity, tokens + math.max(0, now - ts) * rate)
end
local function counter_used(key)
  return tonumber(redis.call('GET', key) or '0')
end
local function leases_held(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', num(now))
  return redis.call('ZCARD', key)
end
"""

FUNCTIONS = (
    COMMON
    + """
-- Reconcile n adjustments whose fields start after ARGV[base], keys after KEYS[koff].
local function settle_all(base, koff, n)
  for i = 1, n do
    local b = base + (i - 1) * 8
    local kind, delta = ARGV[b + 1], tonumber(ARGV[b + 8])
    local capacity, rate, ttl = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
    local key = KEYS[koff + i]
    if kind == 'bucket' then
      local tokens = math.min(capacity, bucket_tokens(key, capacity, rate) - delta)
      redis.call('HSET', key, 'tokens', num(tokens), 'ts', num(now))
      redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
    elseif kind == 'counter' then
      local used = math.max(0, counter_used(key) + delta)
      redis.call('SET', key, num(used), 'EX', math.ceil(ttl) + 60)
    else
      redis.call('ZREM', key, ARGV[b + 7])
    end
  end
end
-- Evaluate n checks (fields after ARGV[base], keys after KEYS[koff]); take all or none.
local function take_all(base, koff, n)
  local results = {}
  -- What the first pass read, by check: the second pass reuses it for the first write to
  -- each key (one read per key and call instead of two; a key named twice is read again).
  local read, written = {}, {}
  for i = 1, n do
    local b = base + (i - 1) * 7
    local kind, cost, limit = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    local capacity, rate, ttl = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
    local key = KEYS[koff + i]
    if kind == 'bucket' then
      local tokens = bucket_tokens(key, capacity, rate)
      read[i] = tokens
      if cost > capacity then return {0, i, '-1', results} end
      if tokens < cost then
        local wait = (cost - tokens) / rate
        return {0, i, num(wait), results}
      end
      local left = tokens - cost
      results[i] = {num(math.floor(left)), num((capacity - left) / rate)}
    elseif kind == 'counter' then
      local used = counter_used(key)
      read[i] = used
      if used + cost > limit or (cost == 0 and used >= limit) then
        return {0, i, num(ttl), results}
      end
      results[i] = {num(limit - used - cost), num(ttl)}
    else
      local held = leases_held(key)
      if held >= limit then return {0, i, '1', results} end
      results[i] = {num(limit - held - 1), '0'}
    end
  end
  for i = 1, n do
    local b = base + (i - 1) * 7
    local kind, cost = ARGV[b + 1], tonumber(ARGV[b + 2])
    local capacity, rate, ttl = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
    local key = KEYS[koff + i]
    local first = not written[key]
    written[key] = true
    if kind == 'bucket' then
      local tokens = (first and read[i] or bucket_tokens(key, capacity, rate)) - cost
      redis.call('HSET', key, 'tokens', num(tokens), 'ts', num(now))
      redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
    elseif kind == 'counter' then
      -- Lua doubles, as in-process (INCRBYFLOAT adds in long double: results would differ)
      local used = first and read[i] or counter_used(key)
      redis.call('SET', key, num(used + cost), 'EX', math.ceil(ttl) + 60)
    else
      redis.call('ZADD', key, num(now + ttl), ARGV[b + 7])
      redis.call('EXPIRE', key, math.ceil(ttl) + 60)
    end
  end
  return {1, 0, '', results}
end
"""
)

# ARGV: now, n, then n checks (7 fields each).
TAKE = FUNCTIONS + "\nreturn take_all(2, 0, tonumber(ARGV[2]))\n"
# ARGV: now, n, then n adjustments (8 fields each).
SETTLE = FUNCTIONS + "\nsettle_all(2, 0, tonumber(ARGV[2]))\nreturn 1\n"
# One round trip per request: the previous calls' reconciliations ride along with the next
# admission. ARGV: now, na, na adjustments, n, n checks; KEYS: adjustment keys, check keys.
SETTLE_THEN_TAKE = (
    FUNCTIONS
    + """
local na = tonumber(ARGV[2])
settle_all(2, 0, na)
local base = 3 + na * 8
return take_all(base, na, tonumber(ARGV[base]))
"""
)

PEEK = (
    COMMON
    + """
local n = tonumber(ARGV[2])
local out = {}
for i = 1, n do
  local b = 2 + (i - 1) * 7
  local kind, limit = ARGV[b + 1], tonumber(ARGV[b + 3])
  local capacity, rate, ttl = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
  if kind == 'bucket' then
    local tokens = bucket_tokens(KEYS[i], capacity, rate)
    out[i] = {num(math.floor(tokens)), num((capacity - tokens) / rate)}
  elseif kind == 'counter' then
    out[i] = {num(limit - counter_used(KEYS[i])), num(ttl)}
  else
    out[i] = {num(limit - leases_held(KEYS[i])), '0'}
  end
end
return out
"""
)


def _args(check: Check) -> list[str | int | float]:
    return [
        check.type,
        check.cost,
        check.limit,
        check.capacity,
        check.rate,
        check.ttl,
        check.member,
    ]


def _pair(raw: list[bytes]) -> CheckResult:
    return CheckResult(float(raw[0]), float(raw[1]))


class RedisLimiter:
    def __init__(self, client: aioredis.Redis) -> None:
        # Every API call runs a script: over one shared, auto-pipelined connection where the
        # client allows it (aigateway/core/redis_pipe.py, ~4x less CPU per call under load).
        self._take = register_script(client, TAKE)
        self._settle_take = register_script(client, SETTLE_THEN_TAKE)
        self._settle = register_script(client, SETTLE)
        self._peek = register_script(client, PEEK)

    async def take(
        self, checks: list[Check], now: float, adjustments: list[Adjustment] | None = None
    ) -> Verdict:
        if adjustments:
            args: list[str | int | float] = [now, len(adjustments)]
            for adjustment in adjustments:
                args += [*_args(adjustment.check), adjustment.delta]
            args.append(len(checks))
            for check in checks:
                args += _args(check)
            keys = [a.check.key for a in adjustments] + [c.key for c in checks]
            raw = await self._settle_take(keys=keys, args=args)
        else:
            args = [now, len(checks)]
            for check in checks:
                args += _args(check)
            raw = await self._take(keys=[c.key for c in checks], args=args)
        allowed, index, wait, results = raw
        parsed = tuple(_pair(r) for r in results)
        if allowed:
            return Verdict(True, -1, None, parsed)
        retry_after = float(wait)
        return Verdict(False, int(index) - 1, None if retry_after < 0 else retry_after, parsed)

    async def settle(self, adjustments: list[Adjustment], now: float) -> None:
        if not adjustments:
            return
        args: list[str | int | float] = [now, len(adjustments)]
        for adjustment in adjustments:
            args += [*_args(adjustment.check), adjustment.delta]
        await self._settle(keys=[a.check.key for a in adjustments], args=args)

    async def peek(self, checks: list[Check], now: float) -> list[CheckResult]:
        args: list[str | int | float] = [now, len(checks)]
        for check in checks:
            args += _args(check)
        return [_pair(r) for r in await self._peek(keys=[c.key for c in checks], args=args)]


_limiters: weakref.WeakKeyDictionary[aioredis.Redis, RedisLimiter] = weakref.WeakKeyDictionary()


def redis_limiter(client: aioredis.Redis) -> RedisLimiter:
    """The limiter of ``client``, built once: building one registers four scripts, each a
    SHA-1 of its text (measured at ~2 % of an API worker's event loop when done per call)."""
    limiter = _limiters.get(client)
    if limiter is None:
        limiter = _limiters[client] = RedisLimiter(client)
    return limiter

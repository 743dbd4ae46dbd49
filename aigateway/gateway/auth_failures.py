"""Slow down API-key guessing: failed authentications are limited per client address.

A failure (no key, unknown, revoked or expired key) takes one token from a bucket per client
address: ``AIGATEWAY_AUTH_FAILURE_BURST`` tokens, refilled at
``AIGATEWAY_AUTH_FAILURES_PER_MINUTE``. The bucket lives in the quota limiter
(aigateway/quotas/limiter*.py): Redis when REDIS_URL is set (one script, shared by every
process), in process otherwise. Only failures touch it, so a valid key costs no Redis round
trip here.

When the bucket is empty the failure is answered 429 with Retry-After, and this process
remembers the address until then: every request from it is refused *before* its key is
checked, valid or not. Otherwise the limit would only change the answer to wrong guesses (429
instead of 401) while a right guess still got its 200. Remembering costs a dict lookup per
request. Other processes learn of the block at the address's next failure there (one more
guess per process, at most, per refill).

IPv6 clients are counted per /64 (one host usually holds a whole /64). The address is the
ASGI peer: behind a proxy, have uvicorn take the client from X-Forwarded-For
(``FORWARDED_ALLOW_IPS``, docs/configuration.md), or every client shares the proxy's bucket.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time

from django.conf import settings

from aigateway.core.redis import get_async_redis
from aigateway.gateway.errors import GatewayError
from aigateway.quotas.checks import BUCKET, Check
from aigateway.quotas.limiter import InProcessLimiter, Limiter
from aigateway.quotas.limiter_redis import RedisLimiter

logger = logging.getLogger(__name__)
KEY_PREFIX = "aigw:auth-fail:"
MAX_REMEMBERED = 100_000  # blocked addresses kept per process (expired ones pruned first)

_local = InProcessLimiter()  # single-process backend (no REDIS_URL), and the fallback
_blocked: dict[str, float] = {}  # client key → time.time() until which it is refused


class TooManyAuthFailures(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "too_many_auth_failures"


def client_key(client_ip: str) -> str:
    """The address a bucket belongs to: the IPv4 address, or the IPv6 /64."""
    if ":" not in client_ip:
        return client_ip
    try:
        return str(ipaddress.ip_network(f"{client_ip}/64", strict=False))
    except ValueError:
        return client_ip


def _refusal(until: float, now: float) -> TooManyAuthFailures:
    seconds = max(1, math.ceil(until - now))
    return TooManyAuthFailures(
        "Too many failed authentications from this address; retry after "
        f"{seconds} seconds with a valid key.",
        headers={"Retry-After": str(seconds)},
    )


def auth_refuse_blocked(client_ip: str) -> None:
    """Before the key is checked: raise TooManyAuthFailures while this address is blocked
    here. In-process only (no I/O): this runs on every API call."""
    if not _blocked:
        return
    key = client_key(client_ip)
    until = _blocked.get(key)
    if until is None:
        return
    now = time.time()
    if until <= now:
        _blocked.pop(key, None)
        return
    raise _refusal(until, now)


def _check(key: str) -> Check:
    per_minute = float(settings.AIGATEWAY_AUTH_FAILURES_PER_MINUTE)
    burst = float(max(1, settings.AIGATEWAY_AUTH_FAILURE_BURST))
    return Check(key=KEY_PREFIX + key, type=BUCKET, cost=1, limit=per_minute, capacity=burst,
                 rate=per_minute / 60)  # fmt: skip


def _limiter() -> Limiter:
    client = get_async_redis()
    return RedisLimiter(client) if client is not None else _local


def _remember(key: str, until: float, now: float) -> None:
    if len(_blocked) >= MAX_REMEMBERED:
        for stale in [k for k, t in _blocked.items() if t <= now]:
            del _blocked[stale]
        if len(_blocked) >= MAX_REMEMBERED:  # a flood of addresses: forget the oldest half
            for old in list(_blocked)[: MAX_REMEMBERED // 2]:
                del _blocked[old]
    _blocked[key] = until


async def auth_failure_record(client_ip: str) -> None:
    """After a failed authentication: count it; raise TooManyAuthFailures (and block the
    address here) when it was past the limit. If the limiter's Redis is unreachable the
    failure is counted in this process instead (the same as the quota limits' fail-open)."""
    if settings.AIGATEWAY_AUTH_FAILURES_PER_MINUTE <= 0:
        return
    key = client_key(client_ip)
    now = time.time()
    limiter = _limiter()
    try:
        verdict = await limiter.take([_check(key)], now)
    except Exception:  # noqa: BLE001 -- Redis down: keep limiting, per process
        logger.warning("auth failure limiter: Redis unreachable, counting in process")
        verdict = await _local.take([_check(key)], now)
    if verdict.allowed:
        return
    until = now + (verdict.retry_after or 1.0)
    _remember(key, until, now)
    raise _refusal(until, now)


def auth_failures_reset() -> None:
    """Forget this process's counts and blocks (tests)."""
    global _local
    _local = InProcessLimiter()
    _blocked.clear()

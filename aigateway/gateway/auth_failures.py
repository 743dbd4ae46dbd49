"""Slow down API-key guessing: failed authentications are limited per client address.

A failure (no key, unknown, revoked or expired key) takes one token from a bucket per client
address: ``AIGATEWAY_AUTH_FAILURE_BURST`` tokens, refilled at
``AIGATEWAY_AUTH_FAILURES_PER_MINUTE``. The bucket lives in the quota limiter
(aigateway/quotas/limiter*.py): Redis when REDIS_URL is set (one script, shared by every
process), in process otherwise. Only failures touch it, so a valid key costs no Redis round
trip here.

When the bucket is empty the failure is answered 429 with Retry-After (the SDKs back off
instead of hammering), and this process remembers the address until then, so further wrong
keys from it are refused without a Redis round trip. A *valid* key is always served, from any
address: keys are 256-bit random, so a right guess is not a risk worth refusing for, while
refusing valid keys would let one client with a bad key lock out everyone behind the same
NAT, corporate proxy or load balancer. Other processes learn of the block at the address's
next failure there.

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
from aigateway.quotas.limiter_redis import redis_limiter

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
    """The address a bucket belongs to: the IPv4 address (also when written IPv4-mapped, as
    a dual-stack listener reports it), or the IPv6 /64."""
    if ":" not in client_ip:
        return client_ip
    try:
        address = ipaddress.IPv6Address(client_ip)
    except ValueError:
        return client_ip
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


def _refusal(until: float, now: float) -> TooManyAuthFailures:
    seconds = max(1, math.ceil(until - now))
    return TooManyAuthFailures(
        "Too many failed authentications from this address; retry after "
        f"{seconds} seconds with a valid key.",
        headers={"Retry-After": str(seconds)},
    )


def _blocked_until(key: str, now: float) -> float | None:
    """Until when this process refuses failures from ``key`` (no I/O)."""
    until = _blocked.get(key)
    if until is not None and until <= now:
        _blocked.pop(key, None)
        return None
    return until


def _check(key: str) -> Check:
    per_minute = float(settings.AIGATEWAY_AUTH_FAILURES_PER_MINUTE)
    burst = float(max(1, settings.AIGATEWAY_AUTH_FAILURE_BURST))
    return Check(key=KEY_PREFIX + key, type=BUCKET, cost=1, limit=per_minute, capacity=burst,
                 rate=per_minute / 60)  # fmt: skip


def _limiter() -> Limiter:
    client = get_async_redis()
    return redis_limiter(client) if client is not None else _local


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
    until = _blocked_until(key, now)
    if until is not None:  # already refused here: no need to ask Redis again
        raise _refusal(until, now)
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

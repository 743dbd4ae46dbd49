"""Password sign-in throttling: failed attempts are counted per username *from one client
address* and per client address. Past ``AIGATEWAY_LOGIN_MAX_FAILURES`` for a username from
an address (or ``AIGATEWAY_LOGIN_IP_MAX_FAILURES`` from one address, whatever the usernames)
every password sign-in that the count covers is refused, a right password included, until
``AIGATEWAY_LOGIN_LOCKOUT_SECONDS`` have passed since the last counted failure. The moment a
lockout starts is audited (``auth.login_locked``).

Why not per username alone: anyone who knows an admin's username could then lock them out
from anywhere with a few requests. Per (username, address) the guesser locks out only itself;
the per-address count stops one address trying many usernames. (Password sign-in is the
break-glass path beside SSO; its accounts also need a one-time code.)

The counters are the quota limiter's ``counter`` checks (aigateway/quotas): in Redis when
REDIS_URL is set, so every process sees the same counts; in this process otherwise, and when
Redis cannot be reached (then per process, with a warning: a sign-in must not fail because
Redis is down). Checking a lockout only reads the counters (``peek``), and attempts refused
during a lockout are not counted, so neither extends it.

Where it applies: ``ThrottledModelBackend`` (every password ``authenticate`` with a request:
the dashboard sign-in and /admin/) refuses a locked-out attempt; the ``user_login_failed``
receiver counts failures (wrong passwords, and the sign-in form's own refusals: a wrong
one-time code, password sign-in off); the sign-in form says why it refused.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import redis
import redis.asyncio as aioredis
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest

from aigateway.audit.services import audit_record
from aigateway.quotas.checks import COUNTER, Check, CheckResult, Verdict
from aigateway.quotas.limiter import Adjustment, InProcessLimiter, Limiter
from aigateway.quotas.limiter_redis import RedisLimiter

logger = logging.getLogger(__name__)

_local = InProcessLimiter()  # no Redis, or Redis unreachable


def _hashed(value: str) -> str:
    # Usernames and addresses are not stored in Redis key names as they are.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _failure_counter(kind: str, who: str, limit: int, cost: float) -> Check:
    return Check(
        key=f"aigw:login-fail:{kind}:{_hashed(who)}",
        type=COUNTER,
        cost=cost,
        limit=float(limit),
        ttl=float(settings.AIGATEWAY_LOGIN_LOCKOUT_SECONDS),
    )


def _checks(request: HttpRequest | None, username: str, cost: float) -> list[Check]:
    """[username from this address, this address] (the address one only when known)."""
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    user = f"{username.strip().casefold()}\n{address}"
    checks = [_failure_counter("user", user, settings.AIGATEWAY_LOGIN_MAX_FAILURES, cost)]
    if address:
        limit = settings.AIGATEWAY_LOGIN_IP_MAX_FAILURES
        checks.append(_failure_counter("ip", address, limit, cost))
    return checks


async def _run(operation: str, *args: Any) -> Any:
    """One limiter call on a short-lived Redis connection (sign-ins are rare; a connection of
    this call's own event loop avoids sharing one across the loops of sync callers)."""
    if not settings.REDIS_URL:
        return await getattr(_local, operation)(*args)
    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        limiter: Limiter = RedisLimiter(client)
        return await getattr(limiter, operation)(*args)
    except (redis.RedisError, OSError) as exc:
        logger.warning("sign-in throttling runs per process: Redis failed (%s)", type(exc).__name__)
        return await getattr(_local, operation)(*args)
    finally:
        await client.aclose()


def login_locked(request: HttpRequest | None, username: str) -> bool:
    """True while this username from this address, or this address, is locked out (reads
    the counters only: a check must not extend the window)."""
    results: list[CheckResult] = async_to_sync(_run)(
        "peek", _checks(request, username, 0.0), time.time()
    )
    return any(result.remaining <= 0 for result in results)


def login_failure_record(request: HttpRequest | None, username: str) -> None:
    """Count one failed attempt; audit the lockout it starts, if it does."""
    checks = _checks(request, username, 1.0)
    verdict: Verdict = async_to_sync(_run)("take", checks, time.time())
    if not verdict.allowed:
        return  # already locked out: not counted, not extended
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    for check, result in zip(checks, verdict.results, strict=True):
        if result.remaining <= 0:
            by_address = ":ip:" in check.key
            audit_record(
                action="auth.login_locked",
                target_type="address" if by_address else "user",
                target_label=(address if by_address else username)[:150],
                actor_label="anonymous",
                details={
                    "failures": int(check.limit),
                    "seconds": int(check.ttl),
                    "username": username[:150],
                    "ip": address,
                },
            )


def login_failures_forget(request: HttpRequest | None, username: str) -> None:
    """A successful sign-in clears the username's count from this address (the address keeps
    its own count)."""
    checks = _checks(request, username, 0.0)[:1]
    async_to_sync(_run)("settle", [Adjustment(checks[0], -1e12)], time.time())


class ThrottledModelBackend(ModelBackend):
    """ModelBackend that refuses every password attempt of a locked-out username or
    address (PermissionDenied stops ``authenticate`` at once and sends user_login_failed)."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if request is not None and login_locked(request, str(username or "")):
            raise PermissionDenied("too many failed sign-ins")
        return super().authenticate(request, username=username, password=password, **kwargs)

    async def aauthenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        # ModelBackend's own async version would skip the check above.
        return await sync_to_async(self.authenticate)(
            request, username=username, password=password, **kwargs
        )


@receiver(user_logged_in, dispatch_uid="login-throttle-forget")
def _forget_failures(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # After the whole sign-in (password and one-time code), not after the password alone:
    # else a known password would reset the count between one-time code guesses.
    if request is not None and hasattr(user, "get_username"):
        login_failures_forget(request, user.get_username())


@receiver(user_login_failed, dispatch_uid="login-throttle-count")
def _count_failure(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    if request is None:
        return  # not a sign-in through a page (e.g. the test client's login())
    login_failure_record(request, str(credentials.get("username", "")))

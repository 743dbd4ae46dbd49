"""RFC 6238 TOTP (HMAC-SHA1, 30 s steps, 6 digits: what authenticator apps use) for
break-glass accounts, with hmac/hashlib only. A code's time step is accepted once (replays
refused); one step of clock drift either way is allowed; wrong codes are throttled (in Redis when
REDIS_URL is set, so across processes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote

import redis
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction

from aigateway.audit.services import audit_record
from aigateway.core.redis import get_sync_redis
from auth.sso.models import TotpDevice
from providers.crypto import decrypt_secret, encrypt_secret

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
MAX_FAILURES = 5  # wrong codes per device within FAILURE_WINDOW before codes are refused
FAILURE_WINDOW = 15 * 60


def new_secret() -> str:
    """160 random bits, base32 (RFC 4226's recommended key length)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret_b32: str) -> bytes:
    padded = secret_b32.upper() + "=" * (-len(secret_b32) % 8)
    return base64.b32decode(padded)


def hotp(secret_b32: str, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 HOTP: HMAC-SHA1 over the 8-byte counter, dynamic truncation."""
    digest = hmac.new(_key(secret_b32), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(secret_b32: str, at: float | None = None) -> str:
    """The code for the time step of ``at`` (now by default)."""
    return hotp(secret_b32, int((time.time() if at is None else at) // STEP_SECONDS))


def provisioning_uri(secret_b32: str, *, account: str, issuer: str = "aigateway") -> str:
    label = quote(f"{issuer}:{account}")
    return f"otpauth://totp/{label}?secret={secret_b32}&issuer={quote(issuer)}&digits={DIGITS}"


@transaction.atomic
def totp_enrol(*, user: AbstractBaseUser, actor_label: str = "cli") -> str:
    """Give ``user`` a (new) factor and return its secret: show it once, it is not shown again."""
    secret = new_secret()
    TotpDevice.objects.update_or_create(
        user_id=user.pk, defaults={"secret_ciphertext": encrypt_secret(secret), "last_step": 0}
    )
    audit_record(
        action="sso.breakglass_enrolled",
        target_type="user",
        target_id=user.pk,
        target_label=user.get_username(),
        actor_label=actor_label,
    )
    return secret


def totp_remove(*, user: AbstractBaseUser, actor_label: str = "cli") -> bool:
    deleted, _ = TotpDevice.objects.filter(user_id=user.pk).delete()
    if deleted:
        audit_record(
            action="sso.breakglass_removed",
            target_type="user",
            target_id=user.pk,
            target_label=user.get_username(),
            actor_label=actor_label,
        )
    return bool(deleted)


def _failures_key(device: TotpDevice) -> str:
    # Per enrolment: a new secret (a new ciphertext) starts with a clean count.
    digest = hashlib.sha256(device.secret_ciphertext.encode()).hexdigest()[:16]
    return f"aigateway:totp:failures:{device.pk}:{digest}"


def totp_verify(device: TotpDevice, code: str, *, at: float | None = None) -> bool:
    """True once per time step for the right code. Claiming the step is one conditional
    UPDATE, so two concurrent sign-ins with one code cannot both pass."""
    code = "".join((code or "").split())
    if len(code) != DIGITS or not code.isdigit():
        return False
    if _failures(_failures_key(device)) >= MAX_FAILURES:
        return False
    secret = decrypt_secret(device.secret_ciphertext)
    now_step = int((time.time() if at is None else at) // STEP_SECONDS)
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if not hmac.compare_digest(hotp(secret, step), code):
            continue
        claimed = TotpDevice.objects.filter(pk=device.pk, last_step__lt=step).update(last_step=step)
        if claimed:
            _forget_failures(_failures_key(device))
            return True
        break  # right code, already used (or an older one than the last used)
    _count_failure(_failures_key(device))
    return False


def _failures(key: str) -> int:
    client = get_sync_redis()
    if client is not None:
        try:
            return int(client.get(key) or 0)
        except redis.RedisError:
            return 0  # the per-step replay guard still holds; the throttle is extra
    return int(cache.get(key) or 0)


def _count_failure(key: str) -> None:
    """One more wrong code: in Redis when configured (shared by every process), else in the
    process's cache. The window starts at the first failure."""
    client = get_sync_redis()
    if client is not None:
        try:
            with client.pipeline() as pipe:
                pipe.incr(key)
                pipe.expire(key, FAILURE_WINDOW, nx=True)
                pipe.execute()
        except redis.RedisError:
            pass
        return
    if not cache.add(key, 1, timeout=FAILURE_WINDOW):
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=FAILURE_WINDOW)


def _forget_failures(key: str) -> None:
    client = get_sync_redis()
    if client is not None:
        try:
            client.delete(key)
        except redis.RedisError:
            pass
    cache.delete(key)

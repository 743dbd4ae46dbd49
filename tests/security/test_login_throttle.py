"""Password sign-in throttling (auth/login_throttle.py): per username and per client address,
a right password refused during the lockout, the lockout audited, and the same counts in
every process through Redis."""

from __future__ import annotations

import time

import pytest
import redis
from django.test import Client

from aigateway.audit.models import AuditEvent
from aigateway.quotas.limiter import InProcessLimiter
from auth import login_throttle

RIGHT = "pw-alice-secret"


def _sign_in(
    password: str, *, username: str = "alice", address: str = "198.51.100.7", path: str = "/login/"
) -> Client:
    client = Client(REMOTE_ADDR=address)
    client.post(path, {"username": username, "password": password})
    return client


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _refusal_text(client_address: str = "198.51.100.7", username: str = "alice") -> str:
    response = Client(REMOTE_ADDR=client_address).post(
        "/login/", {"username": username, "password": RIGHT}
    )
    return response.content.decode()


@pytest.fixture
def strict(settings):
    settings.AIGATEWAY_LOGIN_MAX_FAILURES = 3
    settings.AIGATEWAY_LOGIN_IP_MAX_FAILURES = 6
    settings.AIGATEWAY_LOGIN_LOCKOUT_SECONDS = 2
    return settings


@pytest.mark.django_db
def test_a_username_is_locked_after_repeated_failures_even_for_the_right_password(cast, strict):
    assert _signed_in(_sign_in(RIGHT))  # before: fine
    for _ in range(3):
        assert not _signed_in(_sign_in("wrong-guess"))
    assert not _signed_in(_sign_in(RIGHT))
    # Only from that address: a guesser elsewhere cannot lock the real user out.
    assert _signed_in(_sign_in(RIGHT, address="203.0.113.9"))
    assert "Too many failed sign-ins" in _refusal_text()
    locked = AuditEvent.objects.filter(action="auth.login_locked")
    assert [(e.target_type, e.target_label) for e in locked] == [("user", "alice")]
    assert locked.get().details["failures"] == 3
    assert _signed_in(_sign_in("pw-bob-secret", username="bob", address="203.0.113.9"))
    time.sleep(2.2)  # the window since the last counted failure has passed
    assert _signed_in(_sign_in(RIGHT))


@pytest.mark.django_db
def test_attempts_during_a_lockout_do_not_extend_it(cast, strict):
    for _ in range(3):
        _sign_in("wrong-guess")
    time.sleep(1.2)
    for _ in range(5):
        assert not _signed_in(_sign_in("still-guessing"))
    time.sleep(1.1)  # 2.3 s after the last counted failure, 1.1 s after the last attempt
    assert _signed_in(_sign_in(RIGHT))


@pytest.mark.django_db
def test_checking_a_lockout_does_not_extend_the_window(cast, strict):
    for name in ("ann", "ben", "cid", "dan", "eva"):  # 5 of the address's 6
        _sign_in("wrong-guess", username=name, address="192.0.2.70")
    time.sleep(1.2)
    assert _signed_in(_sign_in("pw-bob-secret", username="bob", address="192.0.2.70"))
    time.sleep(1.0)  # 2.2 s after the last failure, 1.0 s after the last check
    for name in ("fay", "gus"):  # had the check kept the count alive, this would be 7
        _sign_in("wrong-guess", username=name, address="192.0.2.70")
    assert _signed_in(_sign_in(RIGHT, address="192.0.2.70"))


@pytest.mark.django_db
def test_one_address_trying_many_usernames_is_locked_for_all_of_them(cast, strict):
    strict.AIGATEWAY_LOGIN_MAX_FAILURES = 100
    for name in ("ann", "ben", "cid", "dan", "eva", "fay"):
        _sign_in("wrong-guess", username=name, address="192.0.2.66")
    assert not _signed_in(_sign_in(RIGHT, address="192.0.2.66"))
    assert _signed_in(_sign_in(RIGHT, address="192.0.2.67"))  # another address is not locked
    locked = AuditEvent.objects.get(action="auth.login_locked")
    assert (locked.target_type, locked.target_label) == ("address", "192.0.2.66")


@pytest.mark.django_db
def test_the_admin_sign_in_shares_the_lockout(cast, strict):
    cast.alice.is_staff = True
    cast.alice.save()
    for _ in range(3):
        _sign_in("wrong-guess", path="/admin/login/")
    admin = _sign_in(RIGHT, path="/admin/login/")
    assert not _signed_in(admin)
    assert not _signed_in(_sign_in(RIGHT))


@pytest.mark.django_db
def test_a_successful_sign_in_clears_the_username_s_count(cast, strict):
    for _ in range(2):
        _sign_in("wrong-guess")
    assert _signed_in(_sign_in(RIGHT))
    for _ in range(2):
        _sign_in("wrong-guess")
    assert _signed_in(_sign_in(RIGHT))  # 4 failures in the window, never 3 in a row


@pytest.mark.django_db
def test_with_redis_the_lockout_holds_in_every_process(cast, strict, redis_url):
    for _ in range(3):
        _sign_in("wrong-guess")
    login_throttle._local = InProcessLimiter()  # this process forgets: Redis remembers
    assert not _signed_in(_sign_in(RIGHT))
    keys = redis.Redis.from_url(redis_url).keys("aigw:login-fail:user:*")
    assert len(keys) == 1 and b"alice" not in keys[0]  # the username is hashed
    assert 0 < redis.Redis.from_url(redis_url).ttl(keys[0]) <= 2 + 60


@pytest.mark.django_db
def test_with_redis_down_it_throttles_per_process(cast, strict, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    for _ in range(3):
        _sign_in("wrong-guess")
    assert not _signed_in(_sign_in(RIGHT))
    assert "sign-in throttling runs per process" in caplog.text

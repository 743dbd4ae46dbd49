"""API-key authentication at every door, over real HTTP: every kind of missing or bad key
gets a 401 in the door's format; another team's objects look exactly like absent ones; the
key is looked up by its hash; failed attempts are limited per client address
(aigateway/gateway/auth_failures.py) without costing a valid call anything.

Already covered elsewhere and not repeated: the SDKs' view of another team's batches and
files (tests/batches/test_batches_api.py), a revoked key refused after it was cached
(tests/api/test_chat_completions_errors.py)."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from django.utils import timezone

from aigateway.gateway.auth_failures import client_key
from auth.keys import generate_api_key
from tests.factories import make_key, make_provider, make_route
from tests.security.api_http import ANTHROPIC_TYPES, Answer, Case, error_problems, read_answer

HELLO = {"model": "demo", "messages": [{"role": "user", "content": "Hello"}]}
CLAUDE = {**HELLO, "max_tokens": 20}
# One call per door that needs a key: (method, path, body).
DOOR_CALLS = [
    ("POST", "/v1/chat/completions", HELLO),
    ("POST", "/v1/embeddings", {"model": "demo", "input": "x"}),
    ("POST", "/v1/messages", CLAUDE),
    ("POST", "/v1/messages/count_tokens", HELLO),
    ("GET", "/v1/models", None),
    ("GET", "/v1/models/demo", None),
    ("GET", "/v1/files", None),
    ("GET", "/v1/batches", None),
]


@pytest.fixture
def world(live_gateway: Any, cast: Any, redis_url: str) -> dict[str, Any]:
    route = make_route("demo", (make_provider(), "demo"))
    return {
        "base": live_gateway.base_url,
        "port": int(live_gateway.base_url.rsplit(":", 1)[1]),
        "route": route,
        "issued": make_key(cast.team, route),
        "cast": cast,
    }


def call(
    world: dict[str, Any],
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
) -> Answer:
    """One request from the client address ``source`` (any 127.0.0.0/8 address on Linux)."""
    data = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             "Content-Type: application/json", f"Content-Length: {len(data)}"]  # fmt: skip
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", world["port"]), 10, (source, 0)) as sock:
        sock.sendall("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + data)
        return read_answer(sock)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_refused(path: str, answer: Answer, code: str = "invalid_api_key") -> None:
    status = 429 if code == "too_many_auth_failures" else 401
    case = Case("refused", "POST", path, status=status, code=code)
    assert error_problems(case, answer) == []
    if path.startswith("/v1/messages"):
        assert answer.json()["error"]["type"] == ANTHROPIC_TYPES[status]


# -- missing and bad keys ------------------------------------------------------------------
BAD_HEADERS = {
    "no header": {},
    "Bearer with nothing": {"Authorization": "Bearer"},
    "Bearer and spaces": {"Authorization": "Bearer    "},
    "another scheme": {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
    "the prefix only": {"Authorization": "Bearer agw-"},
    "10,000 characters": {"Authorization": "Bearer agw-" + "a" * 10_000},
    "latin-1 bytes": {"Authorization": "Bearer agw-caf\u00e9\u00ff"},
    "a well-formed unknown key": {"Authorization": f"Bearer {generate_api_key()}"},
    "x-api-key, unknown": {"x-api-key": generate_api_key()},
}


@pytest.mark.parametrize(("method", "path", "body"), DOOR_CALLS, ids=[c[1] for c in DOOR_CALLS])
def test_every_bad_or_missing_key_is_a_401_in_the_door_s_format(
    world: dict[str, Any], method: str, path: str, body: object
) -> None:
    failures = {}
    for name, headers in BAD_HEADERS.items():
        answer = call(world, method, path, body, headers)
        case = Case(name, method, path, status=401, code="invalid_api_key")
        if problems := error_problems(case, answer):
            failures[name] = problems
    assert not failures, failures
    assert call(world, method, path, body, bearer(world["issued"].raw_key)).status == 200


def test_the_valid_key_under_another_scheme_is_refused(world: dict[str, Any]) -> None:
    raw = world["issued"].raw_key
    for header in (f"Basic {raw}", f"Token {raw}", raw, f"Bearer{raw}"):
        answer = call(world, "POST", "/v1/chat/completions", HELLO, {"Authorization": header})
        assert_refused("/v1/chat/completions", answer)


def test_the_anthropic_door_takes_the_key_in_x_api_key(world: dict[str, Any]) -> None:
    headers = {"x-api-key": world["issued"].raw_key, "anthropic-version": "2023-06-01"}
    assert call(world, "POST", "/v1/messages", CLAUDE, headers).status == 200
    wrong = {**headers, "x-api-key": world["issued"].raw_key[:-1]}
    assert_refused("/v1/messages", call(world, "POST", "/v1/messages", CLAUDE, wrong))


def test_revoked_expired_and_deleted_team_keys_are_refused(world: dict[str, Any]) -> None:
    from auth.services import api_key_revoke
    from auth.team_services import team_delete

    cast, route = world["cast"], world["route"]
    revoked = make_key(cast.team, route, name="revoked")
    expires_at = timezone.now() + timedelta(seconds=2)
    expired = make_key(cast.team, route, name="expired", expires_at=expires_at)
    doomed_team = type(cast.team).objects.create(organisation=cast.org, slug="doomed", name="D")
    doomed = make_key(doomed_team, route, name="doomed")
    for issued in (revoked, expired, doomed):  # each one works (and is cached) first
        assert call(world, "POST", "/v1/messages", CLAUDE, bearer(issued.raw_key)).status == 200
    api_key_revoke(api_key=revoked.api_key)
    team_delete(actor=cast.alice, team=doomed_team)
    # The expiry passes; the config cache re-checks its version (at most 1 s).
    time.sleep(max(1.1, (expires_at - timezone.now()).total_seconds() + 0.1))
    for path, body in (("/v1/chat/completions", HELLO), ("/v1/messages", CLAUDE)):
        assert_refused(path, call(world, "POST", path, body, bearer(revoked.raw_key)))
        assert_refused(path, call(world, "POST", path, body, bearer(doomed.raw_key)))
        answer = call(world, "POST", path, body, bearer(expired.raw_key))
        assert_refused(path, answer, code="expired_api_key")


def test_another_team_s_objects_answer_exactly_like_absent_ones(world: dict[str, Any]) -> None:
    """404, never 403, and the same code, param and message as for an id that does not
    exist: the answer tells nothing about what other teams have."""
    mine = bearer(world["issued"].raw_key)
    theirs = bearer(make_key(world["cast"].other_team, world["route"], name="outsider").raw_key)
    line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                       "body": HELLO}).encode()  # fmt: skip
    form = (b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--B\r\n'
            b'Content-Disposition: form-data; name="file"; filename="in.jsonl"\r\n\r\n'
            + line + b"\n\r\n--B--\r\n")  # fmt: skip
    head = ("POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: "
            f"{mine['Authorization']}\r\nContent-Type: multipart/form-data; boundary=B\r\n"
            f"Content-Length: {len(form)}\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", world["port"]), 10) as sock:
        sock.sendall(head + form)
        file_id = read_answer(sock).json()["id"]
    create = {"input_file_id": file_id, "endpoint": "/v1/chat/completions",
              "completion_window": "24h"}  # fmt: skip
    batch_id = call(world, "POST", "/v1/batches", create, mine).json()["id"]
    attempts = [
        ("GET", "/v1/files/{file}", None), ("DELETE", "/v1/files/{file}", None),
        ("GET", "/v1/files/{file}/content", None), ("GET", "/v1/batches/{batch}", None),
        ("POST", "/v1/batches/{batch}/cancel", None),
        ("POST", "/v1/batches", {**create, "input_file_id": "{file}"}),
    ]  # fmt: skip
    absent = {"file": "file-" + "0" * 24, "batch": "batch_" + "0" * 24}
    real = {"file": file_id, "batch": batch_id}

    def answer_for(ids: dict[str, str], method: str, path: str, body: Any) -> tuple[int, str]:
        filled = json.loads(json.dumps(body).replace("{file}", ids["file"])) if body else None
        answer = call(world, method, path.format(**ids), filled, theirs)
        error = dict(answer.json()["error"])
        error.pop("request_id")
        text = json.dumps(error).replace(ids["file"], "<id>").replace(ids["batch"], "<id>")
        return answer.status, text

    for method, path, body in attempts:
        assert answer_for(real, method, path, body) == answer_for(absent, method, path, body)
        assert answer_for(real, method, path, body)[0] == 404, (method, path)
    assert call(world, "GET", f"/v1/files/{file_id}", None, mine).status == 200


# -- the key is looked up by its hash ------------------------------------------------------
@pytest.fixture
def sql_seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text and parameters of every SQL statement any thread runs during the test."""
    from django.db.backends import utils

    seen: list[str] = []
    original = utils.CursorWrapper.execute

    def execute(self: Any, sql: str, params: Any = None) -> Any:
        seen.append(f"{sql} {params!r}")
        return original(self, sql, params)

    monkeypatch.setattr(utils.CursorWrapper, "execute", execute)
    return seen


def test_the_key_is_stored_and_looked_up_only_as_its_sha256(
    world: dict[str, Any], sql_seen: list[str]
) -> None:
    """What reaches the database is the SHA-256 of what the client sent, never the key, so
    no comparison the database makes (an index walk, a string compare) can be timed to guess
    a key prefix by prefix: a guess one character off has an unrelated hash. The in-process
    key cache is keyed by the same hash (config_cache ``("api-key", hash)``); the stored hash
    is compared once more with hmac.compare_digest (principal.py) as a second line."""
    from auth.models import ApiKey

    raw = world["issued"].raw_key
    row = ApiKey.objects.filter(pk=world["issued"].api_key.pk).values().get()
    assert row["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert not any(raw[4:20] in str(value) for value in row.values())  # the secret part
    near_miss = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    assert call(world, "GET", "/v1/models", None, bearer(raw)).status == 200
    assert call(world, "GET", "/v1/models", None, bearer(near_miss)).status == 401
    statements = "\n".join(sql_seen)
    assert hashlib.sha256(raw.encode()).hexdigest() in statements
    assert hashlib.sha256(near_miss.encode()).hexdigest() in statements
    assert raw[4:20] not in statements and near_miss[4:20] not in statements


# -- brute force: failed attempts limited per client address --------------------------------
@pytest.fixture
def strict_limit(settings: Any) -> None:
    settings.AIGATEWAY_AUTH_FAILURE_BURST = 5
    settings.AIGATEWAY_AUTH_FAILURES_PER_MINUTE = 30  # one more try every 2 seconds


@pytest.mark.parametrize("limiter_backend", ["inprocess", "redis"])
def test_guessing_keys_is_refused_with_429_and_valid_keys_are_still_served(
    world: dict[str, Any], strict_limit: None, settings: Any, limiter_backend: str
) -> None:
    from aigateway.core.redis import reset_clients

    if limiter_backend == "inprocess":
        settings.REDIS_URL = ""
        reset_clients()
    raw, attacker = world["issued"].raw_key, "127.0.0.2"
    path = "/v1/chat/completions"
    for _ in range(5):
        guess = bearer(generate_api_key())
        assert_refused(path, call(world, "POST", path, HELLO, guess, source=attacker))
    refused = call(world, "POST", path, HELLO, bearer(generate_api_key()), source=attacker)
    assert_refused(path, refused, code="too_many_auth_failures")
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    again = call(world, "GET", "/v1/models", None, bearer(generate_api_key()), attacker)
    assert_refused("/v1/models", again, code="too_many_auth_failures")
    # A valid key from the same address (a colleague behind the same NAT or proxy) is served:
    # a 256-bit key cannot be guessed, and refusing it would let one bad client lock out all.
    assert call(world, "POST", path, HELLO, bearer(raw), source=attacker).status == 200
    anthropic = call(world, "POST", "/v1/messages", CLAUDE, bearer(raw), source=attacker)
    assert anthropic.status == 200
    # Other addresses are untouched: bad keys there are counted on their own.
    other = call(world, "GET", "/v1/models", None, bearer(generate_api_key()), "127.0.0.3")
    assert_refused("/v1/models", other)
    # After Retry-After, one more try per refill.
    time.sleep(int(refused.headers["retry-after"]) + 0.1)
    retry = call(world, "GET", "/v1/models", None, bearer(generate_api_key()), attacker)
    assert_refused("/v1/models", retry)


def test_the_count_is_shared_by_every_process_through_redis(
    world: dict[str, Any], strict_limit: None
) -> None:
    from aigateway.gateway.auth_failures import auth_failures_reset

    for _ in range(5):
        call(world, "GET", "/v1/models", None, bearer(generate_api_key()), source="127.0.0.2")
    auth_failures_reset()  # another process: it has blocked nobody, the count is in Redis
    answer = call(world, "GET", "/v1/models", None, bearer(generate_api_key()), "127.0.0.2")
    assert_refused("/v1/models", answer, code="too_many_auth_failures")


def test_the_limit_can_be_turned_off(world: dict[str, Any], settings: Any) -> None:
    settings.AIGATEWAY_AUTH_FAILURES_PER_MINUTE = 0
    for _ in range(60):
        answer = call(world, "GET", "/v1/models", None, bearer(generate_api_key()))
        assert answer.status == 401


@pytest.fixture
def redis_commands(redis_url: str) -> Iterator[list[str]]:
    """Every command the gateway sends to its Redis database while the test runs (MONITOR)."""
    database = int(redis_url.rsplit("/", 1)[1])
    client = redis.Redis.from_url(redis_url)
    commands: list[str] = []
    stop = threading.Event()
    started = threading.Event()

    def watch() -> None:
        with client.monitor() as monitor:
            started.set()
            for event in monitor.listen():
                if stop.is_set():
                    return
                if event.get("db") == database:
                    commands.append(event["command"])

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    started.wait(5)
    time.sleep(0.1)
    yield commands
    stop.set()
    client.ping()  # wakes the monitor up so it sees the stop
    thread.join(5)
    client.close()


def test_a_valid_key_costs_no_redis_command_for_the_failure_limit(
    world: dict[str, Any], redis_commands: list[str]
) -> None:
    raw = world["issued"].raw_key
    assert call(world, "POST", "/v1/chat/completions", HELLO, bearer(raw)).status == 200
    for _ in range(10):
        assert call(world, "POST", "/v1/chat/completions", HELLO, bearer(raw)).status == 200
    time.sleep(0.2)
    assert not [c for c in redis_commands if "auth-fail" in c]
    assert call(world, "GET", "/v1/models", None, bearer(generate_api_key())).status == 401
    deadline = time.monotonic() + 2
    while not [c for c in redis_commands if "auth-fail" in c] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c for c in redis_commands if "aigw:auth-fail:127.0.0.1" in c]  # the watch works


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4 on a dual-stack listener
        ("not-an-address", "not-an-address"),
    ],
)
def test_ipv6_clients_are_counted_per_64(address: str, key: str) -> None:
    assert client_key(address) == key


def test_the_shipped_proxy_gives_the_gateway_an_address_the_client_cannot_choose() -> None:
    """uvicorn trusts the proxy (docker-compose.yml) and takes the first X-Forwarded-For
    entry; nginx must overwrite the header, or a client picks its own bucket per request."""
    root = Path(__file__).resolve().parents[2]
    compose = (root / "docker-compose.yml").read_text()
    nginx = (root / "deploy" / "nginx.conf").read_text()
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$remote_addr;", nginx)
    assert "$proxy_add_x_forwarded_for" not in nginx
    # uvicorn believes the header from the proxy's fixed address only, not from any other
    # container that can reach web:8000.
    services = yaml.safe_load(compose)["services"]
    proxy_ip = services["proxy"]["networks"]["edge"]["ipv4_address"]
    trusted = re.search(r"--forwarded-allow-ips (\S+)", services["web"]["command"][2])
    assert trusted is not None and trusted.group(1) == proxy_ip != "'*'"
    assert "edge" in services["web"]["networks"]

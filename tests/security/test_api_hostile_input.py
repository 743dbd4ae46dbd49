"""Hostile input at every API door, over real HTTP to the real ASGI app (uvicorn, the
gateway's own handler): each case names the bytes sent and the answer it must get, a 4xx in
the door's error format (OpenAI's, or Anthropic's on /v1/messages) naming the code and the
parameter. After the corpus the gateway still serves, and no usage or audit record of the
valid calls in between is lost.

The bodies are raw bytes on a socket (tests/security/api_http.py): invalid JSON and UTF-8,
deep nesting, NUL bytes, a Content-Length the body never reaches, an unfinished chunked body,
CR/LF in a header. Checks that the OpenAPI document holds for generated input are in
tests/api/test_openapi_fuzz.py; per-parameter rules are in tests/api (not repeated here).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.factories import make_key, make_provider, make_route
from tests.security.api_http import (
    Case,
    error_problems,
    read_answer,
    request,
    run_cases,
    send_raw,
)

HELLO = {"model": "demo", "messages": [{"role": "user", "content": "Hello"}]}
CLAUDE = {**HELLO, "max_tokens": 20}


def j(value: Any) -> bytes:
    return json.dumps(value).encode()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# -- the corpus, door by door ---------------------------------------------------------------
def _body_cases(path: str, valid: dict[str, Any], method: str = "POST") -> list[Case]:
    """What every JSON door must refuse before looking at any field."""
    deep = b'{"model": "demo", "messages": ' + nested(100_000) + b"}"
    return [
        Case("empty body", method, path, b""),
        Case("invalid JSON", method, path, b"{not json"),
        Case("truncated JSON", method, path, j(valid)[:-3]),
        Case("JSON array", method, path, b"[1, 2]"),
        Case("JSON string", method, path, b'"hello"'),
        Case("JSON number", method, path, b"42"),
        Case("JSON null", method, path, b"null"),
        Case("100k nested arrays", method, path, nested(100_000)),
        Case("100k nested arrays in a field", method, path, deep),
        Case("invalid UTF-8", method, path, b'{"model": "demo\xff\xfe", "messages": []}'),
        Case("UTF-16 body", method, path, j(valid).decode().encode("utf-16")),
        Case("UTF-8 with encoded surrogates", method, path, b'{"model": "\xed\xa0\x80"}'),
        Case("NaN literal", method, path, j(valid)[:-1] + b', "temperature": NaN}'),
        Case("a number of 5000 digits", method, path, j(valid)[:-1] + b', "seed": '
             + b"9" * 5000 + b"}"),
        Case("multipart body", method, path, b"--x\r\n\r\nhi\r\n--x--",
             content_type="multipart/form-data; boundary=x"),
        Case("a Host header not allowed", method, path, j(valid), headers={"Host": "evil.test"}),
    ]  # fmt: skip


def _type_cases(path: str, valid: dict[str, Any], wrong: dict[str, Any]) -> list[Case]:
    """A wrong type for each top-level field, one at a time."""
    return [
        Case(f"{name} of the wrong type", "POST", path, j({**valid, name: value}), param=name)
        for name, value in wrong.items()
    ]


def _code(case: Case, **changes: Any) -> Case:
    return Case(**{**case.__dict__, **changes})


CHAT = "/v1/chat/completions"
CHAT_WRONG_TYPES = {
    "model": 42, "messages": "hi", "temperature": "hot", "top_p": [1], "max_tokens": "10",
    "stop": 5, "tools": "all", "tool_choice": 5, "response_format": "json", "seed": "1",
    "user": 5, "stream": "yes", "stream_options": "x", "frequency_penalty": "x",
    "presence_penalty": [], "logit_bias": [], "n": "1", "parallel_tool_calls": "no",
    "metadata": "x", "max_completion_tokens": "9", "reasoning_effort": 3, "store": "no",
    "prediction": 5, "service_tier": 1, "prompt_cache_key": 1, "safety_identifier": {},
}  # fmt: skip


def chat_cases() -> list[Case]:
    user = {"role": "user", "content": "x"}
    return [
        *_body_cases(CHAT, HELLO),
        *_type_cases(CHAT, HELLO, CHAT_WRONG_TYPES),
        Case("max_tokens negative", "POST", CHAT, j({**HELLO, "max_tokens": -1}),
             param="max_tokens"),
        Case("max_tokens zero", "POST", CHAT, j({**HELLO, "max_tokens": 0}), param="max_tokens"),
        Case("max_tokens enormous", "POST", CHAT, j({**HELLO, "max_tokens": 10**30}),
             code="invalid_value", param="max_tokens"),
        Case("max_tokens float", "POST", CHAT, j({**HELLO, "max_tokens": 1.5}),
             param="max_tokens"),
        Case("max_tokens infinite", "POST", CHAT, j(HELLO)[:-1] + b', "max_tokens": 1e999}',
             param="max_tokens"),
        Case("10,000 messages", "POST", CHAT, j({**HELLO, "messages": [user] * 10_000}),
             code="array_above_max_length", param="messages"),
        Case("unknown model", "POST", CHAT, j({**HELLO, "model": "gpt-nothing"}), status=404,
             code="model_not_found", param="model"),
        Case("NUL in the model name", "POST", CHAT, j({**HELLO, "model": "demo\x00"}),
             status=404, code="model_not_found", param="model"),
        Case("a model name of 100k characters", "POST", CHAT, j({**HELLO, "model": "m" * 100_000}),
             status=404, code="model_not_found", param="model"),
        Case("lone surrogate in the model name", "POST", CHAT,
             b'{"model": "demo\\ud800", "messages": [{"role": "user", "content": "x"}]}'),
        Case("lone surrogate in content", "POST", CHAT, j({**HELLO, "messages": [
             {"role": "user", "content": "a\udc00b"}]})),
        Case("deeply nested tool schema", "POST", CHAT, j(HELLO)[:-1]
             + b', "tools": [{"type": "function", "function": {"name": "f", "parameters": '
             + b'{"a": ' * 900 + b"1" + b"}" * 900 + b"}}]}", param="tools"),
        Case("message content is an object", "POST", CHAT,
             j({**HELLO, "messages": [{"role": "user", "content": {"x": 1}}]}),
             param="messages[0]"),
        Case("GET", "GET", CHAT, status=405, code="method_not_allowed"),
        Case("PUT", "PUT", CHAT, j(HELLO), status=405, code="method_not_allowed"),
        Case("DELETE", "DELETE", CHAT, status=405, code="method_not_allowed"),
    ]  # fmt: skip


EMBEDDINGS = "/v1/embeddings"
EMBED = {"model": "demo", "input": "hello"}


def embeddings_cases() -> list[Case]:
    wrong = {"model": 5, "input": 5, "encoding_format": 5, "dimensions": "8", "user": 5}
    return [
        *_body_cases(EMBEDDINGS, EMBED),
        *_type_cases(EMBEDDINGS, EMBED, wrong),
        Case("10,000 inputs", "POST", EMBEDDINGS, j({**EMBED, "input": ["x"] * 10_000}),
             code="array_above_max_length", param="input"),
        Case("unknown model", "POST", EMBEDDINGS, j({**EMBED, "model": "nothing"}), status=404,
             code="model_not_found", param="model"),
        Case("negative token id", "POST", EMBEDDINGS, j({**EMBED, "input": [[1, -2]]}),
             param="input"),
        Case("GET", "GET", EMBEDDINGS, status=405, code="method_not_allowed"),
    ]  # fmt: skip


MESSAGES = "/v1/messages"
MESSAGES_WRONG_TYPES = {
    "model": 42, "messages": "hi", "max_tokens": "10", "system": 5, "temperature": "hot",
    "top_p": "x", "top_k": "5", "stop_sequences": "END", "stream": "yes", "tools": "all",
    "tool_choice": "any", "metadata": "me",
}  # fmt: skip


def messages_cases() -> list[Case]:
    user = {"role": "user", "content": "x"}
    return [
        *_body_cases(MESSAGES, CLAUDE),
        *_type_cases(MESSAGES, CLAUDE, MESSAGES_WRONG_TYPES),
        Case("max_tokens negative", "POST", MESSAGES, j({**CLAUDE, "max_tokens": -5}),
             param="max_tokens"),
        Case("max_tokens enormous", "POST", MESSAGES, j({**CLAUDE, "max_tokens": 10**30}),
             code="invalid_value", param="max_tokens"),
        Case("max_tokens float", "POST", MESSAGES, j({**CLAUDE, "max_tokens": 2.5}),
             param="max_tokens"),
        Case("10,000 messages", "POST", MESSAGES, j({**CLAUDE, "messages": [user] * 10_000}),
             code="array_above_max_length", param="messages"),
        Case("unknown model", "POST", MESSAGES, j({**CLAUDE, "model": "claude-nothing"}),
             status=404, code="model_not_found", param="model"),
        Case("NUL in the model name", "POST", MESSAGES, j({**CLAUDE, "model": "\x00"}),
             status=404, code="model_not_found", param="model"),
        Case("lone surrogate in the system prompt", "POST", MESSAGES,
             j({**CLAUDE, "system": "\ud800"})),
        Case("GET", "GET", MESSAGES, status=405, code="method_not_allowed"),
        Case("count_tokens GET", "GET", MESSAGES + "/count_tokens", status=405,
             code="method_not_allowed"),
        Case("count_tokens invalid JSON", "POST", MESSAGES + "/count_tokens", b"{"),
        Case("count_tokens deep nesting", "POST", MESSAGES + "/count_tokens", nested(100_000)),
    ]  # fmt: skip


def batches_cases() -> list[Case]:
    create = {"input_file_id": "file-x", "endpoint": CHAT, "completion_window": "24h"}
    wrong = {"input_file_id": 5, "endpoint": {}, "completion_window": 24, "metadata": "x"}
    return [
        *_body_cases("/v1/batches", create),
        *_type_cases("/v1/batches", create, wrong),
        Case("unknown argument", "POST", "/v1/batches", j({**create, "bogus": 1}),
             param="bogus"),
        Case("limit not a number", "GET", "/v1/batches?limit=lots", param="limit"),
        Case("limit negative", "GET", "/v1/batches?limit=-1", param="limit"),
        Case("NUL in the cursor", "GET", "/v1/batches?after=%00", param="after"),
        Case("NUL in the id", "GET", "/v1/batches/batch_%00", param="batch_id"),
        Case("unknown batch", "GET", "/v1/batches/batch_nothing", status=404, code="not_found",
             param="batch_id"),
        Case("a 10k-character id", "GET", "/v1/batches/" + "b" * 10_000, status=404,
             code="not_found", param="batch_id"),
        Case("cancel with GET", "GET", "/v1/batches/batch_x/cancel", status=405,
             code="method_not_allowed"),
        Case("DELETE", "DELETE", "/v1/batches", status=405, code="method_not_allowed"),
    ]  # fmt: skip


def files_cases() -> list[Case]:
    form = "multipart/form-data; boundary=XyZ"
    no_file = b'--XyZ\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--XyZ--\r\n'
    no_purpose = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"'
        b"\r\nContent-Type: application/octet-stream\r\n\r\n{}\r\n--XyZ--\r\n"
    )
    return [
        Case("JSON instead of a form", "POST", "/v1/files", j({"purpose": "batch"})),
        Case("no body", "POST", "/v1/files", content_type=None),
        Case("broken multipart", "POST", "/v1/files", b"--XyZ\r\ngarbage", content_type=form,
             param="file"),
        Case("multipart without boundary", "POST", "/v1/files", no_file,
             content_type="multipart/form-data"),
        Case("no file part", "POST", "/v1/files", no_file, content_type=form, param="file"),
        Case("no purpose", "POST", "/v1/files", no_purpose, content_type=form, param="purpose"),
        Case("order invalid", "GET", "/v1/files?order=sideways", param="order"),
        Case("limit invalid", "GET", "/v1/files?limit=0", param="limit"),
        Case("NUL in the id", "GET", "/v1/files/file-%00", param="file_id"),
        Case("unknown file", "GET", "/v1/files/file-nothing", status=404, code="not_found",
             param="file_id"),
        Case("unknown file content", "GET", "/v1/files/file-nothing/content", status=404,
             code="not_found", param="file_id"),
        Case("PUT", "PUT", "/v1/files", b"x", status=405, code="method_not_allowed"),
        Case("POST on a file", "POST", "/v1/files/file-x", b"{}", status=405,
             code="method_not_allowed"),
    ]  # fmt: skip


def models_cases() -> list[Case]:
    return [
        Case("POST", "POST", "/v1/models", j({}), status=405, code="method_not_allowed"),
        Case("DELETE a model", "DELETE", "/v1/models/demo", status=405,
             code="method_not_allowed"),
        Case("unknown model", "GET", "/v1/models/nothing", status=404, code="model_not_found",
             param="model"),
        Case("NUL in the model", "GET", "/v1/models/de%00mo", param="model"),
        Case("CR/LF in the model", "GET", "/v1/models/a%0d%0aSet-Cookie:%20x=1", status=404,
             code="model_not_found", param="model"),
        Case("invalid UTF-8 in the path", "GET", "/v1/models/%ff%fe", status=404,
             code="model_not_found", param="model"),
        Case("unknown endpoint", "POST", "/v1/completions", j({}), status=404, code="not_found"),
    ]  # fmt: skip


DOORS = {
    "chat": chat_cases, "embeddings": embeddings_cases, "messages": messages_cases,
    "batches": batches_cases, "files": files_cases, "models": models_cases,
}  # fmt: skip


@pytest.fixture
def gateway(live_gateway: Any, cast: Any, redis_url: str) -> dict[str, Any]:
    route = make_route("demo", (make_provider(), "demo"))
    return {"base": live_gateway.base_url, "key": make_key(cast.team, route).raw_key}


@pytest.mark.parametrize("door", sorted(DOORS))
def test_every_hostile_case_gets_a_clear_4xx_in_the_door_s_format(
    gateway: dict[str, Any], door: str
) -> None:
    cases = DOORS[door]()
    failures = run_cases(gateway["base"], cases, gateway["key"])
    report = "\n".join(f"- {name}: {'; '.join(p)}" for name, p in failures.items())
    assert not failures, f"{len(failures)} of {len(cases)} cases answered wrongly:\n{report}"


# -- bodies past the limit: refused while streaming, never read whole -----------------------
BODY_LIMIT = 64 * 1024
DOOR_PATHS = [CHAT, EMBEDDINGS, MESSAGES, MESSAGES + "/count_tokens", "/v1/batches"]


def _head(path: str, key: str, *lines: str) -> bytes:
    return "\r\n".join(
        [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
         f"Authorization: Bearer {key}", *lines]
    ).encode()  # fmt: skip


def _assert_413(path: str, answer: Any) -> None:
    case = Case("too large", "POST", path, status=413, code="request_too_large")
    assert error_problems(case, answer) == [], answer.body


@pytest.mark.parametrize("path", DOOR_PATHS)
def test_a_declared_length_past_the_limit_is_refused_before_its_body_is_sent(
    gateway: dict[str, Any], settings: Any, path: str
) -> None:
    """A terabyte announced, 10 bytes sent: the answer comes at once (the gateway does not
    wait for, buffer or spool the body)."""
    settings.AIGATEWAY_MAX_BODY_BYTES = BODY_LIMIT
    head = _head(path, gateway["key"], f"Content-Length: {10**12}")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", _port(gateway)), timeout=5) as sock:
        sock.sendall(head + b"\r\n\r\n" + b'{"model": ')
        answer = read_answer(sock)
        # The unread rest must not be taken for the next request: the server closes.
        assert answer.headers.get("connection") == "close"
        sock.settimeout(5)
        assert sock.recv(1) == b""
    _assert_413(path, answer)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("path", [CHAT, MESSAGES, "/v1/batches"])
def test_a_chunked_body_is_cut_where_it_passes_the_limit(
    gateway: dict[str, Any], settings: Any, path: str
) -> None:
    """No Content-Length: the body streams in 16 KiB chunks and never ends (no last chunk).
    The answer arrives once the limit is passed, so nothing past it was read or stored."""
    settings.AIGATEWAY_MAX_BODY_BYTES = BODY_LIMIT
    chunk = b"x" * 16 * 1024
    with socket.create_connection(("127.0.0.1", _port(gateway)), timeout=5) as sock:
        sock.sendall(_head(path, gateway["key"], "Transfer-Encoding: chunked") + b"\r\n\r\n")
        for _ in range(BODY_LIMIT // len(chunk) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = read_answer(sock)  # times out (fails) if the gateway waits for the end
    _assert_413(path, answer)


def test_a_chunked_body_within_the_limit_is_served(gateway: dict[str, Any]) -> None:
    body = j(HELLO)
    head = _head(CHAT, gateway["key"], "Transfer-Encoding: chunked")
    with socket.create_connection(("127.0.0.1", _port(gateway)), timeout=5) as sock:
        sock.sendall(head + b"\r\n\r\n")
        for piece in (body[:10], body[10:]):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        answer = read_answer(sock)
    assert answer.status == 200, answer.body
    assert "You said: Hello" in answer.json()["choices"][0]["message"]["content"]


def test_uploads_have_their_own_larger_limit(gateway: dict[str, Any], settings: Any) -> None:
    """/v1/files takes up to AIGATEWAY_BATCH_FILE_MAX_BYTES (plus the form around it), not
    the JSON body limit; past that it is refused unread like the rest."""
    settings.AIGATEWAY_MAX_BODY_BYTES = 1024
    settings.AIGATEWAY_BATCH_FILE_MAX_BYTES = 200 * 1024
    line = j({"custom_id": "a", "method": "POST", "url": CHAT, "body": HELLO}) + b"\n"
    content = line * (100 * 1024 // len(line))
    form = (
        b'--XyZ\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
        b"Content-Type: application/jsonl\r\n\r\n" + content + b"\r\n--XyZ--\r\n"
    )
    headers = {"Authorization": f"Bearer {gateway['key']}"}
    kind = "multipart/form-data; boundary=XyZ"
    answer = request(gateway["base"], "POST", "/v1/files", form, headers, kind)
    assert answer.status == 200, answer.body
    assert answer.json()["bytes"] == len(content)
    head = "\r\n".join(
        [
            "POST /v1/files HTTP/1.1",
            "Host: 127.0.0.1",
            f"Content-Type: {kind}",
            f"Authorization: Bearer {gateway['key']}",
            f"Content-Length: {10**12}",
        ]
    )
    answer = send_raw(gateway["base"], head.encode(), b"--XyZ")
    case = Case("too large", "POST", "/v1/files", status=413, code="request_too_large")
    assert error_problems(case, answer) == [], answer.body


def _port(gateway: dict[str, Any]) -> int:
    return int(gateway["base"].rsplit(":", 1)[1])


# -- X-Request-ID: what comes back and what is logged is always a safe value -----------------
class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    handler = _Lines()
    logging.getLogger().addHandler(handler)
    yield handler.records
    logging.getLogger().removeHandler(handler)


HOSTILE_IDS = {
    "CR/LF pair (a second header)": b"ok-1\r\nX-Injected: yes",
    "10,000 characters": b"a" * 10_000,
    "non-ASCII": "caf\u00e9-\u2603".encode(),
    "percent-encoded CR/LF": b"a%0d%0aX-Injected:%20yes",
    "spaces and quotes": b'a b "c"',
    "NUL": b"a\x00b",
}


@pytest.mark.parametrize("value", list(HOSTILE_IDS.values()), ids=list(HOSTILE_IDS))
def test_a_hostile_request_id_is_replaced_and_never_reaches_a_log_line(
    gateway: dict[str, Any], log_records: list[logging.LogRecord], value: bytes
) -> None:
    head = _head(CHAT, gateway["key"], f"Content-Length: {len(j(HELLO))}") + b"\r\n"
    answer = send_raw(gateway["base"], head + b"X-Request-ID: " + value, j(HELLO))
    if answer.status == 400 and not answer.headers.get("x-request-id"):
        return  # the HTTP server refused the header itself (NUL): the app never saw it
    assert answer.status == 200, answer.body
    sent_back = answer.headers["x-request-id"]
    ok_prefix = value.startswith(b"ok-1\r\n")
    assert sent_back == "ok-1" if ok_prefix else sent_back.startswith("req_"), sent_back
    assert "x-injected" not in answer.headers
    lines = [r for r in log_records if r.name == "aigateway.requests"]
    assert [getattr(r, "fields", {}).get("request_id") for r in lines] == [sent_back]
    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    for record in log_records:
        text = plain.format(record) + json.dumps(getattr(record, "fields", {}))
        assert "X-Injected" not in text and "\u2603" not in text and "a" * 100 not in text


def test_two_request_ids_are_not_joined_into_one(gateway: dict[str, Any]) -> None:
    head = _head(CHAT, gateway["key"], f"Content-Length: {len(j(HELLO))}",
                 "X-Request-ID: one", "X-Request-ID: two")  # fmt: skip
    answer = send_raw(gateway["base"], head, j(HELLO))
    assert answer.status == 200 and answer.headers["x-request-id"].startswith("req_")


# -- the whole corpus, then: still serving, and no record of a valid call lost ---------------
def _odd_but_valid() -> list[tuple[str, str, bytes, str | None]]:
    """Requests that look hostile but are valid: served (200), recorded like any call."""

    def chat_with(content: str) -> bytes:
        return j({**HELLO, "messages": [{"role": "user", "content": content}]})

    return [
        ("plain", CHAT, j(HELLO), "application/json"),
        ("NUL in content", CHAT, chat_with("a\x00b"), "application/json"),
        ("emoji as an escaped surrogate pair", CHAT, chat_with("\U0001f600"), "application/json"),
        ("emoji and RTL text", CHAT, chat_with("\U0001f600 \u202e abc"), "application/json"),
        # The content type is not enforced (curl -d sends form-urlencoded): the body is JSON.
        ("JSON sent as text/plain", CHAT, j(HELLO), "text/plain"),
        ("JSON sent as a form", CHAT, j(HELLO), "application/x-www-form-urlencoded"),
        ("no Content-Type", CHAT, j(HELLO), None),
        ("anthropic door", MESSAGES, j(CLAUDE), "application/json"),
        ("embeddings", EMBEDDINGS, j(EMBED), "application/json"),
        ("a stream", CHAT, j({**HELLO, "stream": True}), "application/json"),
    ]


def test_after_the_corpus_it_still_serves_and_no_record_of_a_valid_call_is_lost(
    gateway: dict[str, Any],
) -> None:
    from aigateway.audit.models import AuditEvent
    from aigateway.audit.writer import audit_writer
    from aigateway.usage.models import UsageRecord
    from aigateway.usage.recorder import usage_recorder

    base, key = gateway["base"], gateway["key"]
    corpus = [case for cases in DOORS.values() for case in cases()]
    valid = _odd_but_valid()
    sent: list[str] = []
    failures: dict[str, list[str]] = {}
    for index, case in enumerate(corpus):
        failures.update(run_cases(base, [case], key))
        name, path, body, content_type = valid[index % len(valid)]
        request_id = f"valid-{index}"
        headers = {"Authorization": f"Bearer {key}", "X-Request-ID": request_id}
        answer = request(base, "POST", path, body, headers, content_type)
        if answer.status != 200:
            failures[f"valid: {name}"] = [f"{answer.status}: {answer.body[:200]!r}"]
        sent.append(request_id)
    assert not failures, failures
    usage_recorder.flush()
    audit_writer.flush()
    recorded = set(UsageRecord.objects.filter(request_id__in=sent, status_code=200)
                   .values_list("request_id", flat=True))  # fmt: skip
    assert len(sent) == len(corpus) > 150
    assert recorded == set(sent), f"{len(set(sent) - recorded)} usage records lost"
    audited = set(AuditEvent.objects.filter(action="api.call", target_id__in=sent)
                  .values_list("target_id", flat=True))  # fmt: skip
    assert audited == set(sent), f"{len(set(sent) - audited)} audit entries lost"
    assert usage_recorder.dropped == 0 and audit_writer.dropped == 0


def test_a_batch_file_line_nested_100k_deep_fails_its_line_not_the_worker(
    gateway: dict[str, Any], settings: Any
) -> None:
    settings.AIGATEWAY_BATCH_EAGER_BACKGROUND = False  # the batch runs inside the call
    good = j({"custom_id": "ok", "method": "POST", "url": CHAT, "body": HELLO})
    content = good + b"\n" + nested(100_000) + b"\n"
    form = (b'--XyZ\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n\r\n'
            + content + b"\r\n--XyZ--\r\n")  # fmt: skip
    headers = {"Authorization": f"Bearer {gateway['key']}"}
    uploaded = request(gateway["base"], "POST", "/v1/files", form, headers,
                       "multipart/form-data; boundary=XyZ")  # fmt: skip
    assert uploaded.status == 200, uploaded.body
    create = {"input_file_id": uploaded.json()["id"], "endpoint": CHAT, "completion_window": "24h"}
    batch = request(gateway["base"], "POST", "/v1/batches", j(create), headers)
    assert batch.status == 200, batch.body
    errors = batch.json()["errors"]["data"]
    assert batch.json()["status"] == "failed"
    assert [(e["code"], e["line"]) for e in errors] == [("invalid_json_line", 2)]

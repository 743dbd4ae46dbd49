"""Raw HTTP for the hostile-input and API-auth suites: bytes on a socket to the live gateway
(tests/conftest.py ``live_gateway``), so a test can send what no well-behaved client would
(invalid UTF-8, CR/LF in a header, a Content-Length the body never reaches, an unfinished
chunked body) and check the error shape of each door."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Anthropic's error type for each status (aigateway/api/anthropic_serializers.py ERROR_TYPES).
ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 405: "invalid_request_error", 413: "request_too_large",
    429: "rate_limit_error",
}  # fmt: skip


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def read_answer(sock: socket.socket) -> Answer:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    headers: dict[str, str] = {}
    for name, value in response.getheaders():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Answer(response.status, headers, body)


def send_raw(base_url: str, head: bytes, body: bytes = b"", timeout: float = 10) -> Answer:
    """``head`` is the request line and header lines (no final blank line)."""
    with socket.create_connection(_address(base_url), timeout=timeout) as sock:
        sock.sendall(head + b"\r\n\r\n" + body)
        return read_answer(sock)


def request(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    content_type: str | None = "application/json",
) -> Answer:
    """One HTTP/1.1 request; header values are sent as latin-1 bytes, unchecked."""
    lines = [f"{method} {path} HTTP/1.1", "Connection: close"]
    if "Host" not in (headers or {}):
        lines.append("Host: 127.0.0.1")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    head = "\r\n".join(lines).encode("latin-1")
    return send_raw(base_url, head, body or b"")


@dataclass(frozen=True)
class Case:
    """One hostile request and the answer it must get."""

    name: str
    method: str
    path: str
    body: bytes | None = None
    status: int = 400
    code: str | None = "invalid_request"
    param: str | None = None
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def error_problems(case: Case, answer: Answer) -> list[str]:
    """Where the answer differs from the case's expectation ([] when it matches): status,
    JSON error body in the door's format (OpenAI, or Anthropic's on /v1/messages), code,
    param, the request id echoed, and no trace or internal detail."""
    problems: list[str] = []
    if answer.status != case.status:
        problems.append(f"status {answer.status} != {case.status}: {answer.body[:300]!r}")
        return problems
    if not answer.headers.get("content-type", "").startswith("application/json"):
        problems.append(f"content-type {answer.headers.get('content-type')!r}")
        return problems
    try:
        payload = answer.json()
    except ValueError:
        return [f"body is not JSON: {answer.body[:200]!r}"]
    text = answer.body.decode("utf-8", "replace")
    if "Traceback" in text or 'File "' in text:
        problems.append("a stack trace in the body")
    request_id = answer.headers.get("x-request-id", "")
    if case.path.startswith("/v1/messages"):
        error = payload.get("error", {})
        details = error.get("details", {})
        if payload.get("type") != "error" or error.get("type") != ANTHROPIC_TYPES[case.status]:
            problems.append(f"not an Anthropic error of type {ANTHROPIC_TYPES[case.status]}")
        got = (details.get("error_code"), details.get("param"))
        if payload.get("request_id") != request_id:
            problems.append("request_id differs from X-Request-ID")
    else:
        error = payload.get("error", {})
        if set(error) < {"message", "type", "param", "code"}:
            problems.append(f"not an OpenAI error body: {payload}")
        got = (error.get("code"), error.get("param"))
        expected_type = "rate_limit_error" if case.status == 429 else "invalid_request_error"
        if error.get("type") != expected_type:
            problems.append(f"type {error.get('type')!r} != {expected_type!r}")
        if error.get("request_id") != request_id:
            problems.append("request_id differs from X-Request-ID")
    if not isinstance(error.get("message"), str) or not error["message"]:
        problems.append("no message")
    if got != (case.code, case.param):
        problems.append(f"(code, param) {got} != {(case.code, case.param)}")
    return problems


def run_cases(base_url: str, cases: list[Case], key: str) -> dict[str, list[str]]:
    """Send every case with the key (unless the case sets its own Authorization); return the
    mismatches by case name."""
    failures: dict[str, list[str]] = {}
    for case in cases:
        headers = {"Authorization": f"Bearer {key}", **case.headers}
        answer = request(base_url, case.method, case.path, case.body, headers, case.content_type)
        problems = error_problems(case, answer)
        if problems:
            failures[case.name] = problems
    return failures

"""Validate a batch input file (JSONL) the way OpenAI does before any request runs.

Each line is ``{"custom_id", "method": "POST", "url": <the batch endpoint>, "body": {...}}``.
A file with any problem fails the whole batch: the batch's ``errors`` lists the problems with
their line numbers (at most MAX_ERRORS). What a request body itself contains is checked when
the request runs, exactly as the synchronous API checks it, and a bad body becomes that
request's 400 in the error file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aigateway.api.parsing import parse_json_object
from aigateway.gateway.errors import InvalidRequest

MAX_ERRORS = 100
MAX_CUSTOM_ID = 512


@dataclass(frozen=True, slots=True)
class InputLine:
    line: int
    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LineError:
    code: str
    message: str
    line: int | None = None
    param: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


@dataclass(slots=True)
class ParsedInput:
    lines: list[InputLine] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    model: str = ""

    def fail(self, error: LineError) -> bool:
        """Note an error; False once enough are listed (stop reading)."""
        self.errors.append(error)
        return len(self.errors) < MAX_ERRORS


def _line_error(raw: Any, number: int, endpoint: str) -> LineError | None:
    """The first thing wrong with one parsed line's envelope, if anything."""
    if not isinstance(raw, dict):
        return LineError("invalid_json_line", "This line is not a JSON object.", number)
    custom_id = raw.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return LineError(
            "missing_required_parameter", "Each request needs a 'custom_id' string.",
            number, "custom_id",
        )  # fmt: skip
    if len(custom_id) > MAX_CUSTOM_ID:
        return LineError(
            "invalid_request", f"'custom_id' may be at most {MAX_CUSTOM_ID} characters.",
            number, "custom_id",
        )  # fmt: skip
    if raw.get("method") != "POST":
        return LineError(
            "invalid_method", "The method of each request must be 'POST'.", number, "method"
        )
    if raw.get("url") != endpoint:
        return LineError(
            "invalid_url",
            f"The url of this request does not match the batch endpoint '{endpoint}'.",
            number, "url",
        )  # fmt: skip
    body = raw.get("body")
    if not isinstance(body, dict):
        return LineError(
            "missing_required_parameter", "Each request needs a 'body' object.", number, "body"
        )
    if not isinstance(body.get("model"), str) or not body["model"]:
        return LineError(
            "missing_required_parameter", "The body of each request needs a 'model' string.",
            number, "body.model",
        )  # fmt: skip
    return None


def parse_input(
    content: bytes, *, endpoint: str, allowed_models: frozenset[str], max_requests: int
) -> ParsedInput:
    parsed = ParsedInput()
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        parsed.fail(LineError("invalid_file", "The input file is not UTF-8 text."))
        return parsed
    seen: set[str] = set()
    unknown_reported: set[str] = set()
    for number, text_line in enumerate(text.splitlines(), start=1):
        if not text_line.strip():
            continue  # blank lines (a trailing newline, say) carry no request
        if len(parsed.lines) >= max_requests:
            parsed.fail(LineError(
                "batch_too_large",
                f"The input file has more than the {max_requests} requests a batch may have.",
                number,
            ))  # fmt: skip
            return parsed
        try:  # the API's own rules: UTF-8, no NaN, nesting and unpaired-surrogate limits
            raw = parse_json_object(text_line.encode(), "This line")
        except InvalidRequest as exc:
            error: LineError | None = LineError("invalid_json_line", exc.message, number)
        else:
            error = _line_error(raw, number, endpoint)
        if error is None and raw["custom_id"] in seen:
            error = LineError(
                "duplicate_custom_id",
                "The custom_id of this request duplicates another request's; each custom_id "
                "must be unique within a batch.",
                number, "custom_id",
            )  # fmt: skip
        if error is None:
            error = _model_error(parsed, raw["body"]["model"], number, allowed_models,
                                 unknown_reported)  # fmt: skip
        if error is not None:
            if not parsed.fail(error):
                return parsed
            continue
        seen.add(raw["custom_id"])
        parsed.lines.append(InputLine(number, raw["custom_id"], raw["body"]))
    if not parsed.lines and not parsed.errors:
        parsed.fail(LineError("empty_file", "The batch input file is empty."))
    return parsed


def _model_error(
    parsed: ParsedInput,
    model: str,
    number: int,
    allowed_models: frozenset[str],
    unknown_reported: set[str],
) -> LineError | None:
    """One model per batch (as OpenAI requires), and one this key may call."""
    if not parsed.model:
        parsed.model = model
    elif model != parsed.model:
        return LineError(
            "mismatched_model",
            f"The model '{model}' differs from '{parsed.model}' used by the batch's other "
            "requests; all requests in a batch must use the same model.",
            number, "body.model",
        )  # fmt: skip
    if model not in allowed_models and model not in unknown_reported:
        unknown_reported.add(model)
        return LineError(
            "model_not_found",
            f"The model '{model}' does not exist or this key may not use it.",
            number, "body.model",
        )  # fmt: skip
    return None

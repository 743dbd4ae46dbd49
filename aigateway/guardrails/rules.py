"""A policy's rules and settings as data: parsing and validation, shared by the dashboard,
the config file and the management services.

A rule says what to detect, what to do with a finding and in which direction:

    {"detect": "pii", "action": "redact", "direction": "both"}
    {"detect": "pii.card", "action": "block"}                      # direction: both
    {"detect": "injection", "action": "flag"}                      # direction: input
    {"detect": "custom.codename", "pattern": "Project (Falcon|Eagle)", "ignore_case": true,
     "action": "block"}
    {"detect": "custom.competitors", "words": ["globex", "initech"], "action": "flag"}

``detect`` is a category (secrets, pii, injection, custom), one built-in detector by name
(aigateway/guardrails/detectors.py: BUILTIN_DETECTORS) or ``custom.NAME`` with either a
regular expression (``pattern``) or a word list (``words``). Injection heuristics look at
what users supply: their rules may only flag or block, on input.

Every error is a ValueError whose message starts with the path of the offending value
(``rules[2].action: 'drop' is not one of: block, redact, flag``), so the dashboard and the
config file report the same sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

CUSTOM = "custom."
CUSTOM_NAME = re.compile(r"^custom\.[a-z0-9_-]{1,40}$")
RULE_FIELDS = ("detect", "action", "direction", "pattern", "words", "ignore_case")
MAX_RULES = 100
MAX_PATTERN = 1000
MAX_WORDS, MAX_WORD = 1000, 200
MAX_LIMIT = 10_000_000
# The choices of aigateway/guardrails/models.py (not imported: the pipeline imports this
# module, and it must not need the app registry).
ACTIONS = ["block", "redact", "flag"]
DIRECTIONS = ["input", "output", "both"]
# Chat parameters (OpenAI names) a policy may allow; the Anthropic door's parameters arrive
# under these names (stop_sequences → stop, metadata.user_id → user, …).
CHAT_PARAMS = (
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "response_format",
    "seed",
    "user",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "parallel_tool_calls",
    "reasoning_effort",
    "metadata",
    "store",
    "service_tier",
    "prediction",
    "verbosity",
    "prompt_cache_key",
    "prompt_cache_options",
    "prompt_cache_retention",
    "safety_identifier",
    "logprobs",
    "top_logprobs",
    "n",
    "modalities",
)
# Always allowed: without them there is no call (the output limit has its own setting).
ALWAYS_ALLOWED = frozenset(
    {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens"}
)


def _detectors() -> ModuleType:
    # Imported on use: the config file's parser imports this module, and must stay importable
    # on its own.
    from aigateway.guardrails import detectors

    return detectors


class RuleError(ValueError):
    """A rule or setting is invalid; the message starts with its path."""


@dataclass(frozen=True, slots=True)
class RuleSpec:
    detect: str
    action: str
    direction: str
    pattern: str = ""
    words: tuple[str, ...] = ()
    ignore_case: bool = False

    @property
    def custom(self) -> bool:
        return self.detect.startswith(CUSTOM)

    def as_dict(self) -> dict[str, Any]:
        """The stored and exported form (only the keys that apply)."""
        data: dict[str, Any] = {"detect": self.detect}
        if self.pattern:
            data["pattern"] = self.pattern
        if self.words:
            data["words"] = list(self.words)
        if self.custom:
            data["ignore_case"] = self.ignore_case
        return data | {"action": self.action, "direction": self.direction}


def detector_names(detect: str) -> tuple[str, ...]:
    """The built-in detectors a (non-custom) ``detect`` stands for."""
    if detect in _detectors().CATEGORIES:
        return tuple(_detectors().CATEGORIES[detect])
    return (detect,) if detect in _detectors().BUILTIN_DETECTORS else ()


def is_injection(detect: str) -> bool:
    injection = set(_detectors().CATEGORIES.get("injection", ()))
    names = detector_names(detect)
    return bool(names) and set(names) <= injection


def known_detects() -> str:
    """For error messages: what ``detect`` may be."""
    categories = ", ".join(c for c in _detectors().CATEGORIES if c != "custom")
    return f"a category ({categories}), a built-in detector such as 'pii.card', or custom.NAME"


def _choice(value: Any, path: str, choices: list[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        shown = f"'{value}'" if isinstance(value, str) else type(value).__name__
        raise RuleError(f"{path}: {shown} is not one of: {', '.join(choices)}")
    return value


def _custom(data: dict[str, Any], path: str, detect: str) -> dict[str, Any]:
    if not CUSTOM_NAME.match(detect):
        raise RuleError(
            f"{path}.detect: '{detect}' is not a valid custom name (custom.NAME: lower-case "
            "letters, digits, '_' or '-', at most 40)"
        )
    pattern, words = data.get("pattern"), data.get("words")
    if (pattern is None) == (words is None):
        raise RuleError(f"{path}: a custom rule needs either 'pattern' or 'words'")
    ignore_case = data.get("ignore_case", words is not None)
    if not isinstance(ignore_case, bool):
        raise RuleError(f"{path}.ignore_case: must be true or false")
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN:
            raise RuleError(
                f"{path}.pattern: must be a regular expression of 1 to {MAX_PATTERN} characters"
            )
        try:
            _detectors().regex_detector(detect, pattern, ignore_case=ignore_case)
        except ValueError as exc:
            why = str(exc).removeprefix(f"{detect}: ")  # the detector names itself
            raise RuleError(f"{path}.pattern: not a usable regular expression: {why}") from None
        return {"pattern": pattern, "ignore_case": ignore_case}
    if (
        not isinstance(words, list)
        or not 0 < len(words) <= MAX_WORDS
        or not all(isinstance(w, str) and w.strip() and len(w) <= MAX_WORD for w in words)
    ):
        raise RuleError(
            f"{path}.words: must be a list of 1 to {MAX_WORDS} non-empty words "
            f"(each at most {MAX_WORD} characters)"
        )
    return {"words": tuple(w.strip() for w in words), "ignore_case": ignore_case}


def rule_parse(data: Any, path: str) -> RuleSpec:
    if not isinstance(data, dict):
        raise RuleError(f"{path}: must be a mapping (detect, action, direction)")
    for key in data:
        if key not in RULE_FIELDS:
            raise RuleError(
                f"{path}.{key}: unknown field (expected one of: {', '.join(RULE_FIELDS)})"
            )
    detect = data.get("detect")
    if not isinstance(detect, str) or not detect:
        raise RuleError(f"{path}.detect: required: {known_detects()}")
    extra: dict[str, Any] = {}
    if detect.startswith(CUSTOM):
        extra = _custom(data, path, detect)
    else:
        if not detector_names(detect):
            raise RuleError(
                f"{path}.detect: unknown detector '{detect}' (expected {known_detects()})"
            )
        for key in ("pattern", "words", "ignore_case"):
            if key in data:
                raise RuleError(f"{path}.{key}: only custom rules (custom.NAME) take '{key}'")
    injection = is_injection(detect)
    actions = ["flag", "block"] if injection else ACTIONS
    action = _choice(data.get("action"), f"{path}.action", actions)
    direction = data.get("direction", "input" if injection else "both")
    directions = ["input"] if injection else DIRECTIONS
    if injection and direction != "input":
        raise RuleError(f"{path}.direction: injection heuristics check input only")
    direction = _choice(direction, f"{path}.direction", directions)
    return RuleSpec(detect, action, direction, **extra)


def rules_parse(data: Any, path: str = "rules") -> tuple[RuleSpec, ...]:
    """A list of rules; absent (None) is no rule. The same ``detect`` may appear once."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise RuleError(f"{path}: must be a list of rules")
    if len(data) > MAX_RULES:
        raise RuleError(f"{path}: at most {MAX_RULES} rules")
    rules = tuple(rule_parse(item, f"{path}[{i}]") for i, item in enumerate(data))
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.detect in seen:
            raise RuleError(
                f"{path}[{i}].detect: '{rule.detect}' already has a rule "
                f"({path}[{seen[rule.detect]}])"
            )
        seen[rule.detect] = i
    return rules


def limit_parse(value: Any, path: str) -> int | None:
    """An optional limit: a whole number from 1 to 10,000,000, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_LIMIT:
        raise RuleError(f"{path}: must be a whole number from 1 to {MAX_LIMIT:,} or empty")
    return value


def params_parse(value: Any, path: str = "allowed_params") -> tuple[str, ...] | None:
    """None: any parameter. Else the list of allowed names (each a known chat parameter)."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{path}: must be a list of parameter names")
    for i, name in enumerate(value):
        if name in ALWAYS_ALLOWED:
            raise RuleError(f"{path}[{i}]: '{name}' is always allowed; leave it out")
        if name not in CHAT_PARAMS:
            raise RuleError(
                f"{path}[{i}]: unknown parameter '{name}' (known: {', '.join(sorted(CHAT_PARAMS))})"
            )
        if name in value[:i]:
            raise RuleError(f"{path}[{i}]: '{name}' is listed twice")
    return tuple(value)

"""What the playground page posts, checked into a ChatRequest (or one sentence saying what
is wrong with it)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from providers.types import ChatRequest, Message

ROLES = ("user", "assistant")
MAX_ROUTE_LENGTH = 200


class PlaygroundInputError(ValueError):
    """Bad input from the page: its message is the sentence to show (answered with 400)."""


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # user | assistant
    content: str


@dataclass(frozen=True, slots=True)
class PlaygroundInput:
    team_id: int
    route: str
    system: str
    turns: tuple[Turn, ...]
    temperature: float | None
    max_tokens: int | None

    def chat_request(self) -> ChatRequest:
        messages = [Message("system", self.system)] if self.system.strip() else []
        messages += [Message(t.role, t.content) for t in self.turns]  # type: ignore[arg-type]
        return ChatRequest(
            model=self.route,
            messages=messages,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stream=True,
            include_usage=True,
        )

    def params(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}


def _number(data: dict[str, Any], name: str, label: str) -> float | None:
    value = data.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise PlaygroundInputError(f"{label} must be a number.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlaygroundInputError(f"{label} must be a number.") from None
    if not math.isfinite(number):
        raise PlaygroundInputError(f"{label} must be a number.")
    return number


def _turns(raw: Any) -> tuple[Turn, ...]:
    if not isinstance(raw, list) or not raw:
        raise PlaygroundInputError("Write a message to send.")
    if len(raw) > settings.AIGATEWAY_MAX_MESSAGES:
        raise PlaygroundInputError(
            f"The conversation has {len(raw)} messages; at most "
            f"{settings.AIGATEWAY_MAX_MESSAGES} are allowed."
        )
    turns = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise PlaygroundInputError(f"Message {index} is not a message.")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise PlaygroundInputError(f"Message {index} must be from the user or the assistant.")
        if not isinstance(content, str):
            raise PlaygroundInputError(f"Message {index} must be text.")
        if "\x00" in content:
            raise PlaygroundInputError(f"Message {index} contains a NUL character.")
        turns.append(Turn(role, content))
    if turns[-1].role != "user" or not turns[-1].content.strip():
        raise PlaygroundInputError("The conversation must end with a message from the user.")
    return tuple(turns)


def parse_playground_input(body: bytes) -> PlaygroundInput:
    """Raises PlaygroundInputError with the sentence to show."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PlaygroundInputError("The request is not valid JSON.") from None
    if not isinstance(data, dict):
        raise PlaygroundInputError("The request is not valid JSON.")
    team = data.get("team")
    digits = str(team) if isinstance(team, int | str) and not isinstance(team, bool) else ""
    if not digits.isdigit() or len(digits) > 18:  # beyond any id (and a 64-bit integer)
        raise PlaygroundInputError("Choose a team.")
    route = data.get("route")
    if not isinstance(route, str) or not route.strip() or len(route) > MAX_ROUTE_LENGTH:
        raise PlaygroundInputError("Choose a route.")
    system = data.get("system") or ""
    if not isinstance(system, str) or "\x00" in system:
        raise PlaygroundInputError("The system prompt must be text.")
    temperature = _number(data, "temperature", "Temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise PlaygroundInputError("Temperature must be between 0 and 2.")
    max_tokens_value = _number(data, "max_tokens", "Max tokens")
    max_tokens = None
    if max_tokens_value is not None:
        limit = settings.AIGATEWAY_MAX_OUTPUT_TOKENS
        if max_tokens_value != int(max_tokens_value) or not 1 <= max_tokens_value <= limit:
            raise PlaygroundInputError(f"Max tokens must be a whole number from 1 to {limit}.")
        max_tokens = int(max_tokens_value)
    return PlaygroundInput(
        team_id=int(digits),
        route=route.strip(),
        system=system,
        turns=_turns(data.get("messages")),
        temperature=temperature,
        max_tokens=max_tokens,
    )

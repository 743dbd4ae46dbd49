"""Typed access to one mapping of the file; every error names the path of the value."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aigateway.config_as_code.specs import ConfigError

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STORED = "stored"
# Provider options never hold secrets; an option *named* like one is refused.
SECRET_NAME = re.compile(r"secret|key|password|token", re.IGNORECASE)
MAX_DIGITS, DECIMAL_PLACES = 12, 6  # ModelPrice's DecimalFields
MAX_INT = 2_147_483_647  # a PositiveIntegerField's upper bound (PostgreSQL integer)


def secret_like(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


class Fields:
    """A mapping in the file plus its path; typed getters raise ConfigError with the path."""

    def __init__(self, data: Any, path: str, fields: tuple[str, ...]) -> None:
        self.path = path
        if not isinstance(data, dict):
            raise ConfigError(f"{path or 'the file'}: must be a mapping (key: value)")
        for key in data:
            if key not in fields:
                raise ConfigError(
                    f"{self.at(str(key))}: unknown field (expected one of: {', '.join(fields)})"
                )
        self.data = data

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.at(key)}: {message}")

    def text(
        self,
        key: str,
        default: str | None = None,
        *,
        max_len: int = 200,
        pattern: re.Pattern[str] | None = None,
        choices: list[str] | None = None,
    ) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(key, "required")
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {type(value).__name__}")
        if len(value) > max_len:
            raise self.fail(key, f"longer than {max_len} characters")
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"'{value}' is not valid (allowed: {pattern.pattern})")
        if choices is not None and value not in choices:
            raise self.fail(key, f"'{value}' is not one of: {', '.join(choices)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def number(self, key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.data.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise self.fail(key, f"must be an integer {bounds}")
        return value

    def positive(self, key: str) -> int | None:
        """An optional positive integer (a PositiveIntegerField): absent or null → None."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INT:
            raise self.fail(key, f"must be a positive integer (at most {MAX_INT}) or omitted")
        return value

    def real(self, key: str, default: float) -> float:
        """A finite number (integer or decimal, not a string), as a float."""
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "must be a number")
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(key, "must be a finite number")
        return number

    def block(self, key: str, fields: tuple[str, ...]) -> Fields:
        """A nested mapping (``retries: {…}``); absent or null reads as empty (defaults)."""
        value = self.data.get(key)
        return Fields({} if value is None else value, self.at(key), fields)

    def decimal(self, key: str) -> Decimal:
        """A price: a decimal string ("2.50") or a number, >= 0, at most 6 decimal places."""
        value = self.data.get(key)
        if value is None:
            raise self.fail(key, "required")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, 'must be a decimal number such as "2.50"')
        try:
            # str() first: a YAML float 0.1 is read as 0.1, not 0.1000000000000000055…
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.fail(key, f"'{value}' is not a decimal number") from None
        if not number.is_finite() or number < 0:
            raise self.fail(key, "must be a number >= 0")
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -DECIMAL_PLACES:
            raise self.fail(key, f"at most {DECIMAL_PLACES} decimal places")
        if number >= Decimal(10) ** (MAX_DIGITS - DECIMAL_PLACES):
            raise self.fail(key, f"must be less than {10 ** (MAX_DIGITS - DECIMAL_PLACES)}")
        return number

    def amount(self, key: str, *, required: bool) -> Decimal | None:
        """A limit's amount: a number or a decimal string ("12.50"), read exactly; its range
        is checked by the caller. Absent or null → None (an error if ``required``)."""
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail(key, "required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, "must be a number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.fail(key, f"'{value}' is not a number") from None
        if not number.is_finite():
            raise self.fail(key, "must be a finite number")
        return number

    def options(self, key: str) -> dict[str, Any]:
        """A mapping of JSON values whose names (at any depth) do not look like secrets."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping (name: value)")
        return _json(value, self.at(key))

    def items(self, key: str, fields: tuple[str, ...]) -> list[Fields]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        return [Fields(item, f"{self.at(key)}[{i}]", fields) for i, item in enumerate(value)]

    def names(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of route names")
        for i, name in enumerate(value):
            if name in value[:i]:
                raise ConfigError(f"{self.at(key)}[{i}]: '{name}' is listed twice")
        return tuple(value)

    def env_secret(self, key: str, *, allow_stored: bool, hint: str) -> str | None:
        """``env:NAME`` → NAME; ``stored`` → "" (if allowed); absent → None. Never echoes a
        literal secret back, not even in the error message."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, str) and value.startswith("env:"):
            if not ENV_NAME.match(value[4:]):
                raise self.fail(key, f"'{value}' is not a valid reference (env:VARIABLE_NAME)")
            return value[4:]
        if allow_stored and value == STORED:
            return ""
        raise self.fail(
            key, f"literal secrets are not allowed in the file; use env:VARIABLE_NAME{hint}"
        )

    def timestamp(self, key: str) -> datetime | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise self.fail(key, f"'{value}' is not an ISO 8601 date-time") from None
        elif isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if not isinstance(value, datetime):
            raise self.fail(key, "must be a date-time such as 2027-01-01T00:00:00Z")
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def _json(value: Any, path: str) -> Any:
    """Check an option value (recursively); never echoes a value that may be a secret."""
    if isinstance(value, dict):
        result = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise ConfigError(f"{path}: option names must be strings")
            if secret_like(name):
                raise ConfigError(
                    f"{path}.{name}: looks like a secret; options must not hold secrets. "
                    "Declare it as a credential of the provider instead "
                    "(credentials: [{name: …, secret: env:VARIABLE_NAME}])"
                )
            result[name] = _json(item, f"{path}.{name}")
        return result
    if isinstance(value, list):
        return [_json(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}: must be a finite number")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ConfigError(f"{path}: must be a string, number, true/false, null, list or mapping")

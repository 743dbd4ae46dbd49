"""Typed helpers that read settings from the environment and fail loudly on bad values.

Every helper also accepts ``<NAME>_FILE`` pointing at a file that holds the value, so secrets
can come from Docker/Kubernetes secret mounts instead of plain environment variables.
"""

from __future__ import annotations

import os
from pathlib import Path


class ImproperlyConfiguredEnv(RuntimeError):
    """Raised when an environment variable holds a value we cannot use."""


def _raw(name: str) -> str | None:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfiguredEnv(
                f"{name}_FILE={file_path!r} cannot be read: {exc}"
            ) from exc
    return os.environ.get(name)


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfiguredEnv(f"{name}={value!r} is not a boolean (use true/false)")


def env_int(name: str, default: int) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name}={value!r} is not an integer") from exc


def env_float(name: str, default: float) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name}={value!r} is not a number") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None or value.strip() == "":
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_regex_list(name: str) -> list[str]:
    """A JSON list of regular expressions (JSON because patterns contain commas), each
    checked to compile."""
    import json
    import re

    value = _raw(name)
    if value is None or value.strip() == "":
        return []
    try:
        patterns = json.loads(value)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name} is not a JSON list of strings") from exc
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ImproperlyConfiguredEnv(f"{name} is not a JSON list of strings")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ImproperlyConfiguredEnv(f"{name}: {pattern!r} is not a regex: {exc}") from exc
    return patterns

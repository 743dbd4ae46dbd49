"""What planning shares: the Change record, diff formatting, and the Planner state that the
providers/routes, prices and tenancy planners add their changes to."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from aigateway.config_as_code import audited
from aigateway.config_as_code.reader import secret_like
from aigateway.config_as_code.specs import ConfigError, GatewayConfig, decimal_text
from aigateway.routing.models import Route
from providers.models import Provider

SYMBOLS = {"create": "+", "update": "~"}  # retire, revoke and delete are "-"
_UNSET = object()


@dataclass(frozen=True)
class Change:
    action: str  # create | update | retire | revoke | delete
    kind: str
    name: str
    details: str = ""
    run: Callable[[], Any] = field(default=lambda: None, repr=False, compare=False)

    def __str__(self) -> str:
        line = f"{SYMBOLS.get(self.action, '-')} {self.kind} {self.name}"
        return f"{line}: {self.details}" if self.details else line


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return f"'{value}'"


def _option(name: str, value: Any) -> str:
    if value is _UNSET:
        return "unset"
    if secret_like(name):  # only ever in the database (the file refuses them): not shown
        return "(hidden)"
    return fmt(value) if isinstance(value, str) else _canon(value)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def differs(old: Any, new: Any) -> bool:
    """JSON values (options) are compared exactly: 1, 1.0 and true are different values."""
    if isinstance(old, dict | list) or isinstance(new, dict | list):
        return _canon(old) != _canon(new)
    return bool(old != new)


def describe(name: str, old: Any, new: Any) -> str:
    """``field old → new``; mappings (provider options) are compared name by name."""
    if isinstance(old, dict) and isinstance(new, dict):
        notes = []
        for key in sorted(set(old) | set(new), key=str):
            before, after = old.get(key, _UNSET), new.get(key, _UNSET)
            if before is _UNSET or after is _UNSET or _canon(before) != _canon(after):
                notes.append(f"{name}.{key} {_option(key, before)} → {_option(key, after)}")
        return "; ".join(notes)
    return f"{name} {fmt(old)} → {fmt(new)}"


def save_fields(obj: Any, values: dict[str, Any], *, also: tuple[str, ...] = ()) -> None:
    for name, value in values.items():
        setattr(obj, name, value)
    # save(), not update(): signals bump config caches. ``also``: e.g. auto_now fields.
    obj.save(update_fields=[*values, *also])


class Planner:
    """The changes planned so far, and what the file declares (for reference checks)."""

    def __init__(self, config: GatewayConfig, prune_keys: bool) -> None:
        self.config, self.prune_keys = config, prune_keys
        self.changes: list[Change] = []
        self.issued: list[tuple[str, str]] = []  # (org/team/name, raw key) generated
        self.new_users: set[str] = set()
        self.key_hashes: set[str] = set()
        self.providers = {p.name: p for p in config.providers}
        self.routes = {r.name for r in config.routes}

    def add(self, action: str, kind: str, name: str, details: str, run: Callable[[], Any]) -> None:
        self.changes.append(Change(action, kind, name, details, run))

    def env(self, name: str, path: str, purpose: str) -> str:
        value = os.environ.get(name, "")
        if not value:
            raise ConfigError(f"{path}: environment variable {name} is not set ({purpose})")
        return value

    def update(
        self,
        kind: str,
        name: str,
        obj: Any,
        wanted: dict[str, Any],
        also: tuple[str, ...] = (),
        labels: dict[str, str] | None = None,
    ) -> None:
        """Plan one update of ``obj`` covering every field that differs from ``wanted``.
        ``labels``: how the diff names a field (its place in the file), if not by name."""
        if obj is None:
            return
        labels = labels or {}
        diff = {k: v for k, v in wanted.items() if differs(getattr(obj, k), v)}
        if diff:
            notes = "; ".join(
                describe(labels.get(k, k), getattr(obj, k), v) for k, v in diff.items()
            )
            self.add("update", kind, name, notes, lambda: audited.save(obj, diff, also=also))

    def check_provider(self, name: str, path: str) -> None:
        if name not in self.providers and not Provider.objects.filter(name=name).exists():
            raise ConfigError(f"{path}: unknown provider '{name}'")

    def check_routes(self, names: tuple[str, ...], path: str) -> None:
        for i, name in enumerate(names):
            if name not in self.routes and not Route.objects.filter(name=name).exists():
                raise ConfigError(f"{path}[{i}]: unknown route '{name}'")

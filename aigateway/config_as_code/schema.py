"""The gateway.yaml file format (version 1): dataclasses, parsing and structural validation.

Parsing checks the shape of the file and everything that can be checked without the
database (types, choices, duplicates, literal secrets). References to objects that may live
only in the database (a route's provider, a team's routes…) are checked by the applier.
Every error message starts with the path of the offending value, e.g.
``routes[2].deployments[0].weight: must be an integer >= 0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from aigateway.routing.models import RouteStrategy
from auth.models import OrgRole, TeamRole
from providers.models import ProviderKind

VERSION = 1
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
USER_REF = re.compile(r"^[\w.@+-]+$")
STORED = "stored"


class ConfigError(Exception):
    """The file is invalid, or cannot be applied. The message names the path in the file."""


@dataclass(frozen=True)
class CredentialSpec:
    path: str
    name: str
    env_var: str  # "" means "stored": keep the encrypted secret already in the database
    encrypted: bool  # store: encrypted → read env_var at apply time and store it encrypted


@dataclass(frozen=True)
class ProviderSpec:
    path: str
    name: str
    kind: str
    base_url: str
    enabled: bool
    credentials: tuple[CredentialSpec, ...]


@dataclass(frozen=True)
class DeploymentSpec:
    path: str
    provider: str
    model: str
    credential: str  # "" = not pinned (the provider's active credential is used)
    weight: int
    enabled: bool


@dataclass(frozen=True)
class RouteSpec:
    path: str
    name: str
    description: str
    strategy: str
    deployments: tuple[DeploymentSpec, ...]


@dataclass(frozen=True)
class MemberSpec:
    path: str
    user: str  # a username, or an email address
    role: str


@dataclass(frozen=True)
class ApiKeySpec:
    path: str
    name: str
    env_var: str | None  # None: keep the existing key, or generate one if missing
    routes: tuple[str, ...]
    expires_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class TeamSpec:
    path: str
    slug: str
    name: str
    routes: tuple[str, ...]
    members: tuple[MemberSpec, ...]
    api_keys: tuple[ApiKeySpec, ...]


@dataclass(frozen=True)
class OrgSpec:
    path: str
    slug: str
    name: str
    members: tuple[MemberSpec, ...]
    teams: tuple[TeamSpec, ...]


@dataclass(frozen=True)
class GatewayConfig:
    providers: tuple[ProviderSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    organisations: tuple[OrgSpec, ...] = ()


class _Map:
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

    def number(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, "must be an integer >= 0")
        return value

    def items(self, key: str, fields: tuple[str, ...]) -> list[_Map]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        return [_Map(item, f"{self.at(key)}[{i}]", fields) for i, item in enumerate(value)]

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


def _unique(items: tuple[Any, ...], attr: str, what: str) -> None:
    seen: set[str] = set()
    for item in items:
        value = getattr(item, attr)
        if value in seen:
            raise ConfigError(f"{item.path}.{attr}: duplicate {what} '{value}'")
        seen.add(value)


def _credential(m: _Map) -> CredentialSpec:
    store = m.text("store", "reference", choices=["reference", "encrypted"])
    hint = " (read at call time), optionally with store: encrypted, or 'stored'"
    env_var = m.env_secret("secret", allow_stored=True, hint=hint)
    if env_var is None:
        raise m.fail("secret", "required: env:VARIABLE_NAME or 'stored'")
    return CredentialSpec(m.path, m.text("name"), env_var, encrypted=store == "encrypted")


def _provider(m: _Map) -> ProviderSpec:
    base_url = m.text("base_url", "")
    if base_url:
        try:
            URLValidator()(base_url)
        except ValidationError:
            raise m.fail("base_url", f"'{base_url}' is not a valid URL") from None
    creds = tuple(_credential(c) for c in m.items("credentials", ("name", "secret", "store")))
    _unique(creds, "name", "credential")
    kinds = list(ProviderKind.values)
    return ProviderSpec(
        m.path,
        m.text("name", max_len=50, pattern=SLUG),
        m.text("kind", choices=kinds),
        base_url,
        m.flag("enabled", True),
        creds,
    )


def _route(m: _Map) -> RouteSpec:
    fields = ("provider", "model", "credential", "weight", "enabled")
    deployments = tuple(
        DeploymentSpec(
            d.path,
            d.text("provider", max_len=50),
            d.text("model"),
            d.text("credential", ""),
            d.number("weight", 1),
            d.flag("enabled", True),
        )
        for d in m.items("deployments", fields)
    )
    return RouteSpec(
        m.path,
        m.text("name"),
        m.text("description", "", max_len=500),
        m.text("strategy", RouteStrategy.ORDERED, choices=list(RouteStrategy.values)),
        deployments,
    )


def _members(m: _Map, roles: list[str]) -> tuple[MemberSpec, ...]:
    members = tuple(
        MemberSpec(
            x.path, x.text("user", max_len=150, pattern=USER_REF), x.text("role", choices=roles)
        )
        for x in m.items("members", ("user", "role"))
    )
    _unique(members, "user", "member")
    return members


def _api_key(m: _Map) -> ApiKeySpec:
    env_var = m.env_secret("secret", allow_stored=False, hint=", or omit it to generate a key")
    return ApiKeySpec(
        m.path,
        m.text("name"),
        env_var,
        m.names("routes"),
        m.timestamp("expires_at"),
        m.flag("revoked", False),
    )


def _team(m: _Map) -> TeamSpec:
    keys = tuple(
        _api_key(k)
        for k in m.items(
            "api_keys", ("name", "prefix", "secret", "routes", "expires_at", "revoked")
        )
    )
    _unique(keys, "name", "API key")
    return TeamSpec(
        m.path,
        m.text("slug", max_len=50, pattern=SLUG),
        m.text("name"),
        m.names("routes"),
        _members(m, list(TeamRole.values)),
        keys,
    )


def _org(m: _Map) -> OrgSpec:
    teams = tuple(
        _team(t) for t in m.items("teams", ("slug", "name", "routes", "members", "api_keys"))
    )
    _unique(teams, "slug", "team")
    return OrgSpec(
        m.path,
        m.text("slug", max_len=50, pattern=SLUG),
        m.text("name"),
        _members(m, list(OrgRole.values)),
        teams,
    )


def parse_data(data: Any) -> GatewayConfig:
    if data is None:
        raise ConfigError("the file is empty (expected at least 'version: 1')")
    root = _Map(data, "", ("version", "providers", "routes", "organisations"))
    if root.data.get("version") != VERSION:
        raise root.fail("version", f"must be {VERSION}")
    provider_fields = ("name", "kind", "base_url", "enabled", "credentials")
    config = GatewayConfig(
        providers=tuple(_provider(p) for p in root.items("providers", provider_fields)),
        routes=tuple(
            _route(r)
            for r in root.items("routes", ("name", "description", "strategy", "deployments"))
        ),
        organisations=tuple(
            _org(o) for o in root.items("organisations", ("slug", "name", "members", "teams"))
        ),
    )
    _unique(config.providers, "name", "provider")
    _unique(config.routes, "name", "route")
    _unique(config.organisations, "slug", "organisation")
    return config


def parse_config(text: str) -> GatewayConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Not str(exc): it quotes the offending line, which could hold a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"not valid YAML{where}: {problem}") from None
    return parse_data(data)

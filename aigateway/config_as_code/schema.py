"""The gateway.yaml file format (version 1): parsing and structural validation.

Parsing checks the shape of the file and everything that can be checked without the
database (types, choices, duplicates, literal secrets). References to objects that may live
only in the database (a route's provider, a team's routes…) are checked by the applier.
Every error message starts with the path of the offending value, e.g.
``routes[2].deployments[0].weight: must be an integer >= 0``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from aigateway.config_as_code import guardrails
from aigateway.config_as_code.reader import STORED, Fields
from aigateway.config_as_code.specs import (
    ROUTE_SETTINGS,
    ApiKeySpec,
    ConfigError,
    CredentialSpec,
    DeploymentSpec,
    GatewayConfig,
    LimitSpec,
    MemberSpec,
    OrgSpec,
    PriceSpec,
    ProviderSpec,
    RouteSpec,
    SettingValue,
    TeamSpec,
)
from aigateway.quotas.models import LimitKind, Scope
from aigateway.quotas.services import limit_validate
from aigateway.routing.models import CacheMode, CacheScope, RouteStrategy
from auth.models import OrgRole, TeamRole
from providers.models import ProviderKind

__all__ = ["STORED", "VERSION", "ConfigError", "GatewayConfig", "parse_config", "parse_data"]

VERSION = 1
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
USER_REF = re.compile(r"^[\w.@+-]+$")
DEFAULT_ROTATION_DAYS = 90
DEFAULT_AUDIT_RETENTION_DAYS = 365  # Organisation.audit_retention_days; 0: forever

TOP_FIELDS = (
    "version", "providers", "routes", "prices", "organisations", "limits", "guardrails",
)  # fmt: skip
PROVIDER_FIELDS = (
    "name",
    "kind",
    "base_url",
    "enabled",
    "options",
    "rotation_days",
    "credentials",
)
CREDENTIAL_FIELDS = ("name", "secret", "store")
ROUTE_FIELDS = (
    "name",
    "description",
    "strategy",
    "retries",
    "fallback_on",
    "cache",
    "deployments",
)
RETRY_FIELDS = ("max", "backoff_base_seconds", "backoff_cap_seconds", "timeout_seconds")
FALLBACK_FIELDS = ("errors", "rate_limit", "context_window", "content_filter")
CACHE_FIELDS = ("mode", "scope", "ttl_seconds", "semantic", "semantic_threshold")
DEPLOYMENT_FIELDS = ("provider", "model", "credential", "weight", "enabled", "max_context_tokens")
MAX_RETRIES, MAX_TIMEOUT = 10, 3600  # retries.max, retries.timeout_seconds
MAX_CACHE_TTL = 7 * 24 * 3600  # cache.ttl_seconds: a week
MIN_THRESHOLD, MAX_THRESHOLD = 0.5, 1.0  # cache.semantic_threshold (cosine similarity)
PRICE_FIELDS = ("provider", "model", "input_per_million", "output_per_million")
ORG_FIELDS = ("slug", "name", "members", "teams", "audit_retention_days")
TEAM_FIELDS = ("slug", "name", "log_prompts", "playground_history_visible_to_admins", "routes",
               "members", "api_keys")  # fmt: skip
KEY_FIELDS = ("name", "prefix", "secret", "routes", "expires_at", "revoked")
LIMIT_FIELDS = (
    "scope",
    "target",
    "kind",
    "value",
    "burst",
    "soft_threshold_percent",
    "enabled",
)
_SLUG = "[-a-zA-Z0-9_]+"
# What a limit's target looks like, per scope: (pattern, what it must be, an example).
LIMIT_TARGETS = {
    Scope.ORGANISATION: (SLUG, "an organisation slug", "acme"),
    Scope.TEAM: (re.compile(rf"^{_SLUG}/{_SLUG}$"), "ORG/TEAM", "acme/research"),
    Scope.KEY: (re.compile(rf"^{_SLUG}/{_SLUG}/.+$"), "ORG/TEAM/KEY-NAME", "acme/research/ci"),
    Scope.USER: (USER_REF, "a username or an email address", "alice"),
    Scope.DEPLOYMENT: (
        re.compile(rf"^.+/{_SLUG}:.+$"),
        "ROUTE/PROVIDER:MODEL",
        "gpt-4o/openai:gpt-4o",
    ),
}


def _unique(items: tuple[Any, ...], attr: str, what: str) -> None:
    seen: set[Any] = set()
    for item in items:
        value = getattr(item, attr)
        if value in seen:
            raise ConfigError(f"{item.path}.{attr}: duplicate {what} '{value}'")
        seen.add(value)


def _credential(m: Fields) -> CredentialSpec:
    store = m.text("store", "reference", choices=["reference", "encrypted"])
    hint = " (read at call time), optionally with store: encrypted, or 'stored'"
    env_var = m.env_secret("secret", allow_stored=True, hint=hint)
    if env_var is None:
        raise m.fail("secret", "required: env:VARIABLE_NAME or 'stored'")
    return CredentialSpec(m.path, m.text("name"), env_var, encrypted=store == "encrypted")


def _provider(m: Fields) -> ProviderSpec:
    base_url = m.text("base_url", "")
    if base_url:
        try:
            URLValidator()(base_url)
        except ValidationError:
            raise m.fail("base_url", f"'{base_url}' is not a valid URL") from None
    creds = tuple(_credential(c) for c in m.items("credentials", CREDENTIAL_FIELDS))
    _unique(creds, "name", "credential")
    return ProviderSpec(
        m.path,
        m.text("name", max_len=50, pattern=SLUG),
        m.text("kind", choices=list(ProviderKind.values)),
        base_url,
        m.flag("enabled", True),
        m.options("options"),
        m.number("rotation_days", DEFAULT_ROTATION_DAYS, minimum=1),
        creds,
    )


def _retries(m: Fields) -> dict[str, int | float]:
    """The ``retries`` block (Route field → value); an omitted key takes its default."""
    default = {key: value for block, key, _, value in ROUTE_SETTINGS if block == "retries"}
    max_retries = m.number("max", int(default["max"]), 0, MAX_RETRIES)
    base = m.real("backoff_base_seconds", float(default["backoff_base_seconds"]))
    cap = m.real("backoff_cap_seconds", float(default["backoff_cap_seconds"]))
    timeout = m.real("timeout_seconds", float(default["timeout_seconds"]))
    if base <= 0:
        raise m.fail("backoff_base_seconds", "must be a number of seconds > 0")
    if cap < base:
        raise m.fail("backoff_cap_seconds", f"must be >= backoff_base_seconds ({base:g})")
    if not 0 < timeout <= MAX_TIMEOUT:
        raise m.fail("timeout_seconds", f"must be a number of seconds > 0 and <= {MAX_TIMEOUT}")
    return {
        "max_retries": max_retries,
        "backoff_base_seconds": base,
        "backoff_cap_seconds": cap,
        "timeout_seconds": timeout,
    }


def _fallback_on(m: Fields) -> dict[str, bool]:
    """The ``fallback_on`` block (Route field → value); an omitted key takes its default."""
    return {
        name: m.flag(key, bool(default))
        for block, key, name, default in ROUTE_SETTINGS
        if block == "fallback_on"
    }


def _cache(m: Fields) -> dict[str, SettingValue]:
    """The ``cache`` block (Route field → value); an omitted key takes its default."""
    default = {key: value for block, key, _, value in ROUTE_SETTINGS if block == "cache"}
    modes = list(CacheMode.values)
    mode = m.data.get("mode")
    if mode is False:  # YAML 1.1 reads an unquoted `off` as false
        mode = CacheMode.OFF.value
    elif isinstance(mode, bool):
        raise m.fail("mode", f"must be one of: {', '.join(modes)}")
    else:
        mode = m.text("mode", str(default["mode"]), choices=modes)
    scope = m.text("scope", str(default["scope"]), choices=list(CacheScope.values))
    ttl = m.number("ttl_seconds", int(default["ttl_seconds"]), 1, MAX_CACHE_TTL)
    semantic = m.flag("semantic", bool(default["semantic"]))
    threshold = m.real("semantic_threshold", float(default["semantic_threshold"]))
    if not MIN_THRESHOLD <= threshold <= MAX_THRESHOLD:
        raise m.fail(
            "semantic_threshold", f"must be a number from {MIN_THRESHOLD} to {MAX_THRESHOLD}"
        )
    return {
        "cache_mode": mode,
        "cache_scope": scope,
        "cache_ttl_seconds": ttl,
        "semantic_cache": semantic,
        "semantic_threshold": threshold,
    }


def _route(m: Fields) -> RouteSpec:
    deployments = tuple(
        DeploymentSpec(
            d.path,
            d.text("provider", max_len=50),
            d.text("model"),
            d.text("credential", ""),
            d.number("weight", 1),
            d.flag("enabled", True),
            d.positive("max_context_tokens"),
        )
        for d in m.items("deployments", DEPLOYMENT_FIELDS)
    )
    settings: dict[str, SettingValue] = {}
    settings |= _retries(m.block("retries", RETRY_FIELDS))
    settings |= _fallback_on(m.block("fallback_on", FALLBACK_FIELDS))
    settings |= _cache(m.block("cache", CACHE_FIELDS))
    return RouteSpec(
        m.path,
        m.text("name"),
        m.text("description", "", max_len=500),
        m.text("strategy", RouteStrategy.ORDERED, choices=list(RouteStrategy.values)),
        deployments,
        {name: settings[name] for _, _, name, _ in ROUTE_SETTINGS},  # in the table's order
    )


def _price(m: Fields) -> PriceSpec:
    return PriceSpec(
        m.path,
        m.text("provider", "", max_len=50),
        m.text("model"),
        m.decimal("input_per_million"),
        m.decimal("output_per_million"),
    )


def _members(m: Fields, roles: list[str]) -> tuple[MemberSpec, ...]:
    members = tuple(
        MemberSpec(
            x.path, x.text("user", max_len=150, pattern=USER_REF), x.text("role", choices=roles)
        )
        for x in m.items("members", ("user", "role"))
    )
    _unique(members, "user", "member")
    return members


def _api_key(m: Fields) -> ApiKeySpec:
    env_var = m.env_secret("secret", allow_stored=False, hint=", or omit it to generate a key")
    return ApiKeySpec(
        m.path,
        m.text("name"),
        env_var,
        m.names("routes"),
        m.timestamp("expires_at"),
        m.flag("revoked", False),
    )


def _team(m: Fields) -> TeamSpec:
    keys = tuple(_api_key(k) for k in m.items("api_keys", KEY_FIELDS))
    _unique(keys, "name", "API key")
    return TeamSpec(
        m.path,
        m.text("slug", max_len=50, pattern=SLUG),
        m.text("name"),
        m.names("routes"),
        _members(m, list(TeamRole.values)),
        keys,
        m.flag("log_prompts", False),
        m.flag("playground_history_visible_to_admins", False),
    )


def _org(m: Fields) -> OrgSpec:
    teams = tuple(_team(t) for t in m.items("teams", TEAM_FIELDS))
    _unique(teams, "slug", "team")
    return OrgSpec(
        m.path,
        m.text("slug", max_len=50, pattern=SLUG),
        m.text("name"),
        _members(m, list(OrgRole.values)),
        teams,
        m.number("audit_retention_days", DEFAULT_AUDIT_RETENTION_DAYS, minimum=0),
    )


def _limit(m: Fields) -> LimitSpec:
    scope = m.text("scope", choices=list(Scope.values))
    pattern, shape, example = LIMIT_TARGETS[Scope(scope)]
    target = m.text("target", max_len=500)
    if not pattern.match(target):
        raise m.fail("target", f"'{target}' is not {shape} (e.g. {example})")
    kind = m.text("kind", choices=list(LimitKind.values))
    value = m.amount("value", required=True)
    burst = m.amount("burst", required=False)
    soft = m.number("soft_threshold_percent", 80, 1, 100)
    errors = limit_validate(
        scope=scope, kind=kind, value=value, burst=burst, soft_threshold_percent=soft
    )
    if errors:  # the service's sentences, as the file's errors
        key, sentence = next(iter(errors.items()))
        raise m.fail(key, sentence[0].lower() + sentence[1:].rstrip("."))
    assert value is not None
    return LimitSpec(m.path, scope, target, kind, value, burst, soft, m.flag("enabled", True))


def parse_data(data: Any) -> GatewayConfig:
    if data is None:
        raise ConfigError("the file is empty (expected at least 'version: 1')")
    root = Fields(data, "", TOP_FIELDS)
    if root.data.get("version") != VERSION:
        raise root.fail("version", f"must be {VERSION}")
    config = GatewayConfig(
        providers=tuple(_provider(p) for p in root.items("providers", PROVIDER_FIELDS)),
        routes=tuple(_route(r) for r in root.items("routes", ROUTE_FIELDS)),
        prices=tuple(_price(p) for p in root.items("prices", PRICE_FIELDS)),
        organisations=tuple(_org(o) for o in root.items("organisations", ORG_FIELDS)),
        limits=tuple(_limit(x) for x in root.items("limits", LIMIT_FIELDS)),
        guardrails=tuple(
            guardrails.parse_guardrail(g) for g in root.items("guardrails", guardrails.FIELDS)
        ),
    )
    _unique(config.providers, "name", "provider")
    _unique(config.routes, "name", "route")
    labels = [p.label for p in config.prices]
    for i, price in enumerate(config.prices):
        if price.label in labels[:i]:
            where = f"provider '{price.provider}'" if price.provider else "any provider"
            raise ConfigError(f"{price.path}: duplicate price of '{price.model}' for {where}")
    _unique(config.organisations, "slug", "organisation")
    guardrails.check_unique(config.guardrails)
    labels = [x.label for x in config.limits]
    for i, limit in enumerate(config.limits):
        if limit.label in labels[:i]:
            raise ConfigError(
                f"{limit.path}: duplicate limit: {limit.kind} on {limit.scope} '{limit.target}' "
                f"is declared at {config.limits[labels.index(limit.label)].path} already"
            )
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

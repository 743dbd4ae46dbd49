"""The declared state, as parsed from a gateway.yaml (version 1): plain frozen dataclasses.

Every spec keeps ``path``, its place in the file (``routes[2].deployments[0]``), so errors
found later (by the applier) can name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


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
    options: dict[str, Any]  # kind-specific settings (never secrets), compared exactly
    rotation_days: int
    credentials: tuple[CredentialSpec, ...]


@dataclass(frozen=True)
class DeploymentSpec:
    path: str
    provider: str
    model: str
    credential: str  # "" = not pinned (the provider's active credential is used)
    weight: int
    enabled: bool
    max_context_tokens: int | None = None  # None: not declared (unknown context window)


# A route setting's value: a number, a flag, or a choice (cache.mode, cache.scope).
SettingValue = int | float | bool | str
# A route's resilience and cache settings: (block in the file, key in the block, Route field,
# default). One table for parsing, export and the diff; the defaults are the model's.
ROUTE_SETTINGS: tuple[tuple[str, str, str, SettingValue], ...] = (
    ("retries", "max", "max_retries", 3),
    ("retries", "backoff_base_seconds", "backoff_base_seconds", 1.0),
    ("retries", "backoff_cap_seconds", "backoff_cap_seconds", 60.0),
    ("retries", "timeout_seconds", "timeout_seconds", 600.0),
    ("fallback_on", "errors", "fallback_on_errors", True),
    ("fallback_on", "rate_limit", "fallback_on_rate_limit", True),
    ("fallback_on", "context_window", "fallback_on_context_window", True),
    ("fallback_on", "content_filter", "fallback_on_content_filter", False),
    ("cache", "mode", "cache_mode", "deterministic"),
    ("cache", "scope", "cache_scope", "team"),
    ("cache", "ttl_seconds", "cache_ttl_seconds", 3600),
    ("cache", "semantic", "semantic_cache", False),
    ("cache", "semantic_threshold", "semantic_threshold", 0.97),
)
# Route field → its place in the file ("retries.max"), for the diff.
SETTING_LABELS = {name: f"{block}.{key}" for block, key, name, _ in ROUTE_SETTINGS}


@dataclass(frozen=True)
class RouteSpec:
    path: str
    name: str
    description: str
    strategy: str
    deployments: tuple[DeploymentSpec, ...]
    # Route field → value, for every entry of ROUTE_SETTINGS (defaults filled in).
    settings: dict[str, SettingValue] = field(
        default_factory=lambda: {f: default for _, _, f, default in ROUTE_SETTINGS}
    )


@dataclass(frozen=True)
class PriceSpec:
    path: str
    provider: str  # "" = any provider
    model: str
    input_per_million: Decimal
    output_per_million: Decimal

    @property
    def label(self) -> str:
        return f"{self.provider or '*'}:{self.model}"


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
    log_prompts: bool = False  # request logs carry prompts and completions (redacted)
    # team admins see the metadata of members' playground runs (docs/playground.md)
    playground_history_visible_to_admins: bool = False


@dataclass(frozen=True)
class OrgSpec:
    path: str
    slug: str
    name: str
    members: tuple[MemberSpec, ...]
    teams: tuple[TeamSpec, ...]
    audit_retention_days: int = 365  # 0 keeps the organisation's audit events forever


@dataclass(frozen=True)
class LimitSpec:
    path: str
    scope: str  # org | team | key | user | deployment
    # org: SLUG · team: ORG/TEAM · key: ORG/TEAM/KEY-NAME · user: USERNAME (or email)
    # deployment: ROUTE/PROVIDER:MODEL
    target: str
    kind: str  # rpm | tpm | concurrent | tokens_day | tokens_month | cost_day | cost_month
    value: Decimal
    burst: Decimal | None  # rpm/tpm only; None: the bucket holds ``value``
    soft_threshold_percent: int
    enabled: bool

    @property
    def label(self) -> str:
        return f"{self.scope} {self.target} {self.kind}"


@dataclass(frozen=True)
class GuardrailSpec:
    """A guardrail policy (aigateway/config_as_code/guardrails.py)."""

    path: str
    scope: str  # org | team | route
    target: str  # org: ORG · team: ORG/TEAM · route: ORG/ROUTE
    enabled: bool
    reversible: bool
    max_prompt_tokens: int | None
    max_messages: int | None
    max_output_tokens: int | None
    allowed_params: tuple[str, ...] | None  # None: any parameter
    rules: tuple[dict[str, Any], ...]  # normalized (aigateway/guardrails/rules.py)

    @property
    def label(self) -> str:
        return f"{self.scope} {self.target}"


@dataclass(frozen=True)
class GatewayConfig:
    providers: tuple[ProviderSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    prices: tuple[PriceSpec, ...] = ()
    organisations: tuple[OrgSpec, ...] = ()
    limits: tuple[LimitSpec, ...] = ()
    guardrails: tuple[GuardrailSpec, ...] = ()


def decimal_text(value: Decimal) -> str:
    """A price as written to the file: no exponent, trailing zeros dropped, at least 2
    decimal places (2.500000 → "2.50", 0.075000 → "0.075", 10 → "10.00")."""
    value = value.normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(Decimal("0.01"))
    return f"{value:f}"

"""Writes to routes and their deployments: create, change, remove; validated and audited.

The rules are those of ``gateway apply`` (aigateway/config_as_code/schema.py), so whatever is
saved here exports to a gateway.yaml that applies back to the same state:
- a route's deployments are an ordered list: ``priority`` is the position (0, 1, …), kept
  contiguous here as apply keeps it;
- a provider and upstream model appear at most once per route (apply matches rows by them);
- a pinned credential is an active one of the deployment's provider (export lists only
  active and retiring credentials).
Saving a Route or Deployment bumps the config version (aigateway/routing/signals.py): the
API uses the change at once in this process, within AIGATEWAY_CONFIG_CACHE_SECONDS in others.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from aigateway.audit.changes import audit_change, model_snapshot, target_type_of
from aigateway.config_as_code.reader import MAX_INT
from aigateway.config_as_code.schema import (
    MAX_CACHE_TTL,
    MAX_RETRIES,
    MAX_THRESHOLD,
    MAX_TIMEOUT,
    MIN_THRESHOLD,
)
from aigateway.routing.models import CacheMode, CacheScope, Deployment, Route, RouteStrategy
from providers.models import Credential, CredentialStatus, Provider

if TYPE_CHECKING:
    from auth.models import ApiKey, Team

ROUTE_NAME = re.compile(r"^\S{1,200}$")  # what clients send as "model": no spaces


@dataclass(frozen=True)
class RouteSettings:
    """Everything about a route except its name and deployments (the model's defaults)."""

    description: str = ""
    strategy: str = RouteStrategy.ORDERED
    max_retries: int = 3
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 60.0
    timeout_seconds: float = 600.0
    fallback_on_errors: bool = True
    fallback_on_rate_limit: bool = True
    fallback_on_context_window: bool = True
    fallback_on_content_filter: bool = False
    cache_mode: str = CacheMode.DETERMINISTIC
    cache_scope: str = CacheScope.TEAM
    cache_ttl_seconds: int = 3600
    semantic_cache: bool = False
    semantic_threshold: float = 0.97

    @classmethod
    def of(cls, route: Route) -> RouteSettings:
        return cls(**{name: getattr(route, name) for name in cls.__dataclass_fields__})


def _settings_errors(s: RouteSettings) -> dict[str, list[str]]:
    checks = {
        "description": (len(s.description) <= 500, "The description is at most 500 characters."),
        "strategy": (s.strategy in RouteStrategy.values, "Choose a strategy."),
        "max_retries": (
            0 <= s.max_retries <= MAX_RETRIES,
            f"Retries must be a whole number from 0 to {MAX_RETRIES}.",
        ),
        "backoff_base_seconds": (
            s.backoff_base_seconds > 0,
            "The first backoff must be more than 0 seconds.",
        ),
        "backoff_cap_seconds": (
            s.backoff_cap_seconds >= s.backoff_base_seconds,
            "The longest backoff must be at least the first backoff.",
        ),
        "timeout_seconds": (
            0 < s.timeout_seconds <= MAX_TIMEOUT,
            f"The deadline must be more than 0 and at most {MAX_TIMEOUT} seconds.",
        ),
        "cache_mode": (s.cache_mode in CacheMode.values, "Choose a cache mode."),
        "cache_scope": (s.cache_scope in CacheScope.values, "Choose a cache scope."),
        "cache_ttl_seconds": (
            1 <= s.cache_ttl_seconds <= MAX_CACHE_TTL,
            f"The cache lifetime must be from 1 to {MAX_CACHE_TTL} seconds.",
        ),
        "semantic_threshold": (
            MIN_THRESHOLD <= s.semantic_threshold <= MAX_THRESHOLD,
            f"The similarity threshold must be from {MIN_THRESHOLD} to {MAX_THRESHOLD}.",
        ),
    }
    return {field: [message] for field, (ok, message) in checks.items() if not ok}


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def _audit(
    actor: AbstractBaseUser | None,
    action: str,
    target: Route | Deployment,
    before: dict[str, object] | None,
    label: str | None = None,
) -> None:
    after = None if action.endswith(".deleted") else model_snapshot(target)
    audit_change(
        actor=actor,
        action=action,
        target=target,
        before=before,
        after=after,
        target_label=label,
        details={"via": "dashboard"} if actor else None,
    )


@transaction.atomic
def route_create(
    *, name: str, settings: RouteSettings, actor: AbstractBaseUser | None = None
) -> Route:
    """A new route (no deployment yet, so calls to it fail until one is added)."""
    errors = _settings_errors(settings)
    name = name.strip()
    if not ROUTE_NAME.match(name):
        errors["name"] = [
            "The name is what clients send as the model: 1 to 200 characters, no spaces."
        ]
    elif Route.objects.filter(name=name).exists():
        errors["name"] = [f"A route named {name} already exists."]
    _raise(errors)
    route = Route.objects.create(name=name, **asdict(settings))
    _audit(actor, "route.created", route, None)
    return route


@transaction.atomic
def route_update(
    *, route: Route, settings: RouteSettings, actor: AbstractBaseUser | None = None
) -> Route:
    """Change a route's strategy, retries, failover and cache settings (not its name: clients
    and teams' allowed routes refer to it)."""
    _raise(_settings_errors(settings))
    route = Route.objects.select_for_update().get(pk=route.pk)
    before = model_snapshot(route)
    for field, value in asdict(settings).items():
        setattr(route, field, value)
    route.save()
    _audit(actor, "route.updated", route, before)
    return route


# -- deployments ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DeploymentValues:
    provider: Provider
    upstream_model: str
    credential: Credential | None = None  # pinned; None: the provider's active credential
    weight: int = 1
    enabled: bool = True
    max_context_tokens: int | None = None
    position: int | None = None  # 0 = tried first; None: last (or unchanged)


def _deployment_errors(
    route: Route, values: DeploymentValues, current: Deployment | None
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    model = values.upstream_model.strip()
    if not model or len(model) > 200:
        errors["upstream_model"] = ["Enter the upstream model name (at most 200 characters)."]
    twins = route.deployments.filter(provider=values.provider, upstream_model=model)
    if current is not None:
        twins = twins.exclude(pk=current.pk)
    if model and twins.exists():
        errors["upstream_model"] = [f"{values.provider.name}:{model} already serves this route."]
    credential = values.credential
    if credential is not None and credential.provider_id != values.provider.pk:
        errors["credential"] = [f"That credential is not one of {values.provider.name}'s."]
    elif credential is not None and credential.status != CredentialStatus.ACTIVE:
        errors["credential"] = ["Only an active credential can be pinned."]
    if not 0 <= values.weight <= MAX_INT:
        errors["weight"] = ["The weight must be a whole number of 0 or more."]
    context = values.max_context_tokens
    if context is not None and not 0 < context <= MAX_INT:
        errors["max_context_tokens"] = ["The context window must be a positive whole number."]
    if values.position is not None and values.position < 0:
        errors["position"] = ["The position must be 0 (tried first) or more."]
    return errors


def _renumber(
    route: Route, moved: Deployment | None, position: int | None, actor: AbstractBaseUser | None
) -> None:
    """Priorities 0, 1, … in order, ``moved`` at ``position`` (clamped); audited per row."""
    rows = list(route.deployments.select_for_update().order_by("priority", "id"))
    if moved is not None and position is not None:
        rows = [r for r in rows if r.pk != moved.pk]
        rows.insert(min(position, len(rows)), moved)
    for priority, row in enumerate(rows):
        if row.priority != priority:
            before = model_snapshot(row)
            row.priority = priority
            row.save(update_fields=["priority"])
            if moved is None or row.pk != moved.pk:  # the moved row's own entry says it
                _audit(actor, "deployment.updated", row, before)


@transaction.atomic
def deployment_create(
    *, route: Route, values: DeploymentValues, actor: AbstractBaseUser | None = None
) -> Deployment:
    route = Route.objects.select_for_update().get(pk=route.pk)
    _raise(_deployment_errors(route, values, None))
    deployment = Deployment.objects.create(
        route=route,
        provider=values.provider,
        upstream_model=values.upstream_model.strip(),
        credential=values.credential,
        weight=values.weight,
        enabled=values.enabled,
        max_context_tokens=values.max_context_tokens,
        priority=route.deployments.count(),  # last, then moved if asked
    )
    _renumber(route, deployment, values.position, actor)
    _audit(actor, "deployment.created", deployment, None)
    return deployment


@transaction.atomic
def deployment_update(
    *, deployment: Deployment, values: DeploymentValues, actor: AbstractBaseUser | None = None
) -> Deployment:
    """Change a deployment (its provider and model too: the breaker and latency history of
    the old pair then belong to the new one, as its id stays)."""
    deployment = (
        Deployment.objects.select_for_update().select_related("route").get(pk=deployment.pk)
    )
    route = deployment.route
    _raise(_deployment_errors(route, values, deployment))
    before = model_snapshot(deployment)
    deployment.provider = values.provider
    deployment.upstream_model = values.upstream_model.strip()
    deployment.credential = values.credential
    deployment.weight, deployment.enabled = values.weight, values.enabled
    deployment.max_context_tokens = values.max_context_tokens
    deployment.save()
    _renumber(route, deployment, values.position, actor)
    _audit(actor, "deployment.updated", deployment, before)
    return deployment


@transaction.atomic
def deployment_delete(*, deployment: Deployment, actor: AbstractBaseUser | None = None) -> None:
    route = deployment.route
    before, pk, label = model_snapshot(deployment), deployment.pk, str(deployment)[:300]
    deployment.delete()
    deployment.pk = pk  # the audit entry names what was removed
    _audit(actor, "deployment.deleted", deployment, before, label)
    _renumber(route, None, None, actor)


# -- deleting a route -----------------------------------------------------------------------
@dataclass(frozen=True)
class RouteDeletion:
    """What deleting a route takes with it; the confirmation page shows it first."""

    deployments: list[str]
    teams: list[str]  # teams that may call it now: they lose it
    keys: list[str]  # usable keys narrowed to it and other routes: they keep the others
    guardrail_policies: list[str]
    blocking_keys: list[str]  # usable keys narrowed to this route alone (see route_delete)


def _key_label(key: ApiKey) -> str:
    return f"{key.team}/{key.name} ({key.prefix}…)"  # as auth/team_services.py labels keys


def _holder_snapshot(holder: Team | ApiKey) -> dict[str, Any]:
    """The shape the team's own ``team.*`` / ``api_key.*`` entries have."""
    from auth.models import Team
    from auth.team_services import key_snapshot, team_snapshot

    return team_snapshot(holder) if isinstance(holder, Team) else key_snapshot(holder)


def route_deletion_preview(route: Route) -> RouteDeletion:
    keys = list(
        route.api_keys.select_related("team__organisation").prefetch_related("allowed_routes")
    )
    usable = [k for k in keys if k.revoked_at is None]
    alone = [k for k in usable if len(k.allowed_routes.all()) == 1]
    alone_ids = {k.pk for k in alone}
    return RouteDeletion(
        deployments=[
            f"{d.provider.name}:{d.upstream_model}"
            for d in route.deployments.select_related("provider").order_by("priority", "id")
        ],
        teams=[str(t) for t in route.teams.select_related("organisation").order_by("pk")],
        keys=[_key_label(k) for k in usable if k.pk not in alone_ids],
        guardrail_policies=[p.target_label for p in route.guardrail_policies.all()],
        blocking_keys=[_key_label(k) for k in alone],
    )


@transaction.atomic
def route_delete(*, route: Route, actor: AbstractBaseUser | None = None) -> RouteDeletion:
    """Delete a route and what exists only for it: its deployments (with their breaker
    history) and its guardrail policies. Teams and keys that could call it lose it. Each of
    those changes is audited on its own object (so each organisation sees its teams' and
    keys' changes), then ``route.deleted`` lists them.

    Refused while a usable key is narrowed to this route alone: a key narrowed to no route
    may call every route of its team, so deleting the route would widen that key. Revoke the
    key, or narrow it to another route, first.

    The config version is bumped (aigateway/routing/signals.py): the API answers 404
    ``model_not_found`` for the name at once in this process, within
    AIGATEWAY_CONFIG_CACHE_SECONDS in others. Usage records and audit events keep the name.
    """
    route = Route.objects.select_for_update().get(pk=route.pk)
    plan = route_deletion_preview(route)
    if plan.blocking_keys:
        raise ValidationError(
            {
                "route": [
                    "These keys may call only this route; without it they could call every "
                    "route of their team. Revoke them or give them another route first: "
                    + ", ".join(plan.blocking_keys)
                    + "."
                ]
            }
        )
    # Snapshots first: the rows below go with the route (CASCADE), the holders lose it.
    gone = [
        (row, model_snapshot(row, exclude=exclude), label)
        for row, exclude, label in [
            *((d, (), str(d)[:300]) for d in route.deployments.select_related("provider")),
            *((p, ("updated_at",), p.target_label) for p in route.guardrail_policies.all()),
        ]
    ]
    holders: list[tuple[Team | ApiKey, str]] = [
        *((t, str(t)) for t in route.teams.select_related("organisation")),
        *((k, _key_label(k)) for k in route.api_keys.select_related("team__organisation")),
    ]
    holders_before = [_holder_snapshot(h) for h, _ in holders]
    before, pk, name = model_snapshot(route), route.pk, route.name
    route.delete()
    route.pk = pk  # the audit entry names what was removed
    why = {"via": "dashboard", "route_deleted": name} if actor else {"route_deleted": name}
    for row, row_before, label in gone:
        audit_change(actor=actor, action=f"{target_type_of(row)}.deleted", target=row,
                     before=row_before, after=None, target_label=label, details=why)  # fmt: skip
    for (holder, label), holder_before in zip(holders, holders_before, strict=True):
        audit_change(actor=actor, action=f"{target_type_of(holder)}.updated", target=holder,
                     before=holder_before, after=_holder_snapshot(holder), target_label=label,
                     details=why)  # fmt: skip
    audit_change(actor=actor, action="route.deleted", target=route, before=before, after=None,
                 target_label=name, details={**why, "deployments": plan.deployments,
                                             "teams": plan.teams, "keys": plan.keys})  # fmt: skip
    return plan

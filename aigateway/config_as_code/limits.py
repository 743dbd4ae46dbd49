"""Planning and exporting limits: the file's top-level ``limits:`` list.

A limit is identified by scope, target and kind. A listed limit is brought to exactly the
declared state (an omitted ``burst`` is cleared, an omitted ``soft_threshold_percent`` is
80, an omitted ``enabled`` is true); limits the file does not list are left alone. Every
change goes through aigateway.quotas.services.limit_set, so it is validated and audited
(``limit.set``, actor ``cli``) like a change made on the Limits page.

Targets name things the way the rest of the file does:

======================  =========================  ==========================
scope                   target                     e.g.
======================  =========================  ==========================
``org``                 ORG                        ``acme``
``team``                ORG/TEAM                   ``acme/research``
``key``                 ORG/TEAM/KEY-NAME          ``acme/research/ci``
``user``                USERNAME (or email)        ``alice``
``deployment``          ROUTE/PROVIDER:MODEL       ``gpt-4o/openai:gpt-4o``
======================  =========================  ==========================

A deployment is named by its route, provider and upstream model (as the route's deployments
are matched), not by its position, so reordering a route does not move its limits. Route
and model names may contain ``/`` and ``:``: the target is split where a known route is
followed by ``/PROVIDER:``. If a route lists the same provider and model twice, the first
(by priority) is meant. A target may be declared in the same file (a team created by this
apply); it is looked up by name when the change runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from aigateway.config_as_code.planning import Planner
from aigateway.config_as_code.specs import ConfigError, LimitSpec, OrgSpec, TeamSpec
from aigateway.config_as_code.tenancy import find_user
from aigateway.quotas.models import Limit, LimitKind, Scope
from aigateway.quotas.services import amount_text, limit_set
from aigateway.routing.models import Deployment, Route
from auth.models import ApiKey, Organisation, Team

PROVIDER_MODEL = re.compile(r"^([-a-zA-Z0-9_]+):(.+)$")
SCOPE_ORDER = [Scope.ORGANISATION, Scope.TEAM, Scope.KEY, Scope.USER, Scope.DEPLOYMENT]
KIND_ORDER = list(LimitKind.values)
SETTINGS = ("value", "burst", "soft_threshold_percent", "enabled")


@dataclass(frozen=True)
class _Target:
    current_id: int | None  # None: created by this apply, not in the database yet
    lookup: Callable[[], int]  # the id when the change runs


# -- resolving targets ------------------------------------------------------------------------
def _org_spec(p: Planner, slug: str) -> OrgSpec | None:
    return next((o for o in p.config.organisations if o.slug == slug), None)


def _team_spec(p: Planner, org: str, team: str) -> TeamSpec | None:
    spec = _org_spec(p, org)
    return next((t for t in spec.teams if t.slug == team), None) if spec else None


def _org(p: Planner, spec: LimitSpec, path: str) -> _Target:
    slug = spec.target
    pk = Organisation.objects.filter(slug=slug).values_list("pk", flat=True).first()
    if pk is None and _org_spec(p, slug) is None:
        raise ConfigError(f"{path}: unknown organisation '{slug}'")
    return _Target(pk, lambda: Organisation.objects.get(slug=slug).pk)


def _team(p: Planner, spec: LimitSpec, path: str) -> _Target:
    org, slug = spec.target.split("/")
    rows = Team.objects.filter(organisation__slug=org, slug=slug)
    pk = rows.values_list("pk", flat=True).first()
    if pk is None and _team_spec(p, org, slug) is None:
        raise ConfigError(f"{path}: unknown team '{spec.target}'")
    return _Target(pk, lambda: rows.get().pk)


def _key(p: Planner, spec: LimitSpec, path: str) -> _Target:
    org, team, name = spec.target.split("/", 2)
    rows = ApiKey.objects.filter(team__organisation__slug=org, team__slug=team, name=name)
    pk = rows.values_list("pk", flat=True).first()
    declared = _team_spec(p, org, team)
    if pk is None and not (declared and any(k.name == name for k in declared.api_keys)):
        raise ConfigError(f"{path}: unknown API key '{spec.target}'")
    return _Target(pk, lambda: rows.get().pk)


def _user(p: Planner, spec: LimitSpec, path: str) -> _Target:
    ref = spec.target
    user = find_user(ref, path)
    if user is None and ref not in p.new_users:
        raise ConfigError(f"{path}: unknown user '{ref}'")

    def lookup() -> int:
        found = find_user(ref, path)
        assert found is not None  # created by an earlier change of this apply
        return int(found.pk)

    return _Target(user.pk if user is not None else None, lookup)


def _first_deployment(route: str, provider: str, model: str) -> int | None:
    rows = Deployment.objects.filter(
        route__name=route, provider__name=provider, upstream_model=model
    ).order_by("priority", "pk")
    return rows.values_list("pk", flat=True).first()


def _deployment(p: Planner, spec: LimitSpec, path: str) -> _Target:
    """ROUTE/PROVIDER:MODEL. Split at each '/' whose left side is a known route."""
    declared = {r.name: r for r in p.config.routes}
    target = spec.target
    matches: list[tuple[str, str, str]] = []  # (route, provider, model) with that deployment
    near: list[tuple[str, str, str]] = []  # a known route without that deployment
    for i, char in enumerate(target):
        if char != "/":
            continue
        route, found = target[:i], PROVIDER_MODEL.match(target[i + 1 :])
        if found is None:
            continue
        provider, model = found.groups()
        if route in declared:  # the file's list of deployments is the truth
            has = any(
                (d.provider, d.model) == (provider, model) for d in declared[route].deployments
            )
        elif Route.objects.filter(name=route).exists():
            has = _first_deployment(route, provider, model) is not None
        else:
            continue
        (matches if has else near).append((route, provider, model))
    if len(matches) > 1:
        options = ", ".join(f"route '{r}' → {p_}:{m}" for r, p_, m in matches)
        raise ConfigError(f"{path}: '{target}' is ambiguous ({options})")
    if not matches:
        if near:
            route, provider, model = near[0]
            raise ConfigError(f"{path}: route '{route}' has no deployment {provider}:{model}")
        raise ConfigError(
            f"{path}: no route matches '{target}' (expected ROUTE/PROVIDER:MODEL, e.g. "
            "gpt-4o/openai:gpt-4o)"
        )
    route, provider, model = matches[0]

    def lookup() -> int:
        pk = _first_deployment(route, provider, model)
        assert pk is not None  # the route's deployments were synced by an earlier change
        return pk

    return _Target(_first_deployment(route, provider, model), lookup)


RESOLVERS: dict[str, Callable[[Planner, LimitSpec, str], _Target]] = {
    Scope.ORGANISATION: _org,
    Scope.TEAM: _team,
    Scope.KEY: _key,
    Scope.USER: _user,
    Scope.DEPLOYMENT: _deployment,
}


# -- planning ---------------------------------------------------------------------------------
def _shown(setting: str, value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def plan_limit(p: Planner, spec: LimitSpec) -> None:
    """Set the declared limit exactly; limits the file does not list are left alone."""
    target = RESOLVERS[spec.scope](p, spec, f"{spec.path}.target")
    current = None
    if target.current_id is not None:
        current = Limit.objects.filter(
            scope=spec.scope, scope_id=target.current_id, kind=spec.kind
        ).first()
    wanted: dict[str, Any] = {
        "value": amount_text(spec.value),
        "burst": amount_text(spec.burst),
        "soft_threshold_percent": spec.soft_threshold_percent,
        "enabled": spec.enabled,
    }

    def run() -> None:
        try:
            limit_set(
                actor=None,
                scope=spec.scope,
                scope_id=target.lookup(),
                kind=spec.kind,
                value=spec.value,
                burst=spec.burst,
                soft_threshold_percent=spec.soft_threshold_percent,
                enabled=spec.enabled,
            )
        except ValidationError as exc:
            raise ConfigError(f"{spec.path}: {' '.join(exc.messages)}") from None

    name = spec.label
    if current is None:
        notes = [wanted["value"]]
        notes += [f"burst {wanted['burst']}"] if spec.burst is not None else []
        notes += [f"soft threshold {spec.soft_threshold_percent}%"]
        notes += [] if spec.enabled else ["disabled"]
        p.add("create", "limit", name, ", ".join(notes), run)
        return
    before: dict[str, Any] = {
        "value": amount_text(current.value),
        "burst": amount_text(current.burst),
        "soft_threshold_percent": current.soft_threshold_percent,
        "enabled": current.enabled,
    }
    diff = [
        f"{key} {_shown(key, before[key])} → {_shown(key, wanted[key])}"
        for key in SETTINGS
        if before[key] != wanted[key]
    ]
    if diff:
        p.add("update", "limit", name, "; ".join(diff), run)


# -- export -----------------------------------------------------------------------------------
def _number(value: Decimal) -> int | str:
    """Whole amounts as integers (100000), others as exact decimal strings ("12.5")."""
    text = amount_text(value) or "0"
    return int(text) if "." not in text else text


def _targets() -> dict[str, dict[int, str]]:
    """Every target's name in the file, by scope and id (one query per scope)."""
    orgs = dict(Organisation.objects.values_list("pk", "slug"))
    teams = {
        pk: f"{org}/{slug}"
        for pk, org, slug in Team.objects.values_list("pk", "organisation__slug", "slug")
    }
    keys = {
        pk: f"{org}/{team}/{name}"
        for pk, org, team, name in ApiKey.objects.values_list(
            "pk", "team__organisation__slug", "team__slug", "name"
        )
    }
    users = dict(get_user_model().objects.values_list("pk", "username"))
    deployments: dict[int, str] = {}
    seen: set[str] = set()
    rows = Deployment.objects.values_list(
        "pk", "route__name", "provider__name", "upstream_model"
    ).order_by("route__name", "priority", "pk")
    for pk, route, provider, model in rows:
        name = f"{route}/{provider}:{model}"
        if name not in seen:  # a repeated provider:model of a route cannot be named
            seen.add(name)
            deployments[pk] = name
    return {
        Scope.ORGANISATION: orgs,
        Scope.TEAM: teams,
        Scope.KEY: keys,
        Scope.USER: users,
        Scope.DEPLOYMENT: deployments,
    }


def export_limits() -> list[dict[str, Any]]:
    """Every limit whose target still exists (a limit on a deleted team, key, user or
    deployment applies to nothing and cannot be named), in a stable order."""
    names = _targets()
    items = []
    for limit in Limit.objects.all():
        target = names.get(limit.scope, {}).get(limit.scope_id)
        if target is None:
            continue
        item: dict[str, Any] = {
            "scope": limit.scope,
            "target": target,
            "kind": limit.kind,
            "value": _number(limit.value),
        }
        if limit.burst is not None:
            item["burst"] = _number(limit.burst)
        item["soft_threshold_percent"] = limit.soft_threshold_percent
        item["enabled"] = limit.enabled
        items.append(item)
    items.sort(
        key=lambda i: (SCOPE_ORDER.index(i["scope"]), i["target"], KIND_ORDER.index(i["kind"]))
    )
    return items

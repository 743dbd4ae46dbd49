"""Export the database as a gateway.yaml (version 1). Never writes a secret.

Environment-variable credentials export as ``secret: env:NAME``; encrypted ones as
``secret: stored`` ("keep what is stored"); API keys export without a secret, with their
display ``prefix`` for recognition (apply ignores it). Active and retiring credentials are
exported; pending (a rotation in progress) and retired ones are not. Provider options whose
name looks like a secret (only possible if set outside the file) are left out and reported.
Prices export as decimal strings. Every route exports its ``retries``, ``fallback_on`` and
``cache`` blocks with every key, defaults included; a deployment its ``max_context_tokens``
when set, never its health-probe data (``last_probe_*``). Limits export with their targets
named as in the file (limits.py); a limit whose target was deleted is left out. Ordering is
deterministic.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import yaml

from aigateway.config_as_code.guardrails import export_guardrails
from aigateway.config_as_code.limits import export_limits
from aigateway.config_as_code.providers_routes import LIVE
from aigateway.config_as_code.reader import STORED, secret_like
from aigateway.config_as_code.schema import VERSION
from aigateway.config_as_code.specs import ROUTE_SETTINGS, decimal_text
from aigateway.routing.models import Route
from auth.models import ApiKey, Organisation, Team
from providers.models import ModelPrice, Provider

HEADER = """\
# aigateway configuration (python manage.py gateway export). Apply with:
#   python manage.py gateway apply gateway.yaml --dry-run   # then without --dry-run
# Secrets are never exported: 'env:NAME' is read from the environment, 'stored' keeps the
# encrypted secret in the database; API keys keep their stored hash ('prefix' is informational).
"""


def _options(value: Any, path: str, skipped: list[str]) -> Any:
    """Sorted by name at every level, without names that look like secrets."""
    if isinstance(value, dict):
        kept = {}
        for name in sorted(value, key=str):
            if secret_like(str(name)):
                skipped.append(f"{path}.{name}")
            else:
                kept[name] = _options(value[name], f"{path}.{name}", skipped)
        return kept
    if isinstance(value, list):
        return [_options(item, f"{path}[{i}]", skipped) for i, item in enumerate(value)]
    return value


def _provider(provider: Provider, skipped: list[str]) -> dict[str, Any]:
    credentials = [
        {"name": c.name, "secret": f"env:{c.env_var}" if c.env_var else STORED}
        for c in provider.credentials.filter(status__in=LIVE).order_by("name")
    ]
    return {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "enabled": provider.enabled,
        "options": _options(provider.options or {}, f"{provider.name}.options", skipped),
        "rotation_days": provider.rotation_days,
        "credentials": credentials,
    }


def _route(route: Route) -> dict[str, Any]:
    deployments = []
    for d in route.deployments.select_related("provider", "credential").order_by("priority", "id"):
        item: dict[str, Any] = {"provider": d.provider.name, "model": d.upstream_model}
        if d.credential is not None:
            item["credential"] = d.credential.name
        item |= {"weight": d.weight, "enabled": d.enabled}
        if d.max_context_tokens is not None:
            item["max_context_tokens"] = d.max_context_tokens
        deployments.append(item)
    data: dict[str, Any] = {
        "name": route.name,
        "description": route.description,
        "strategy": route.strategy,
    }
    for block, key, name, default in ROUTE_SETTINGS:  # always written, in the table's order
        value = getattr(route, name)
        data.setdefault(block, {})[key] = type(default)(value)
    return data | {"deployments": deployments}


def _prices() -> list[dict[str, Any]]:
    rows = sorted(
        ModelPrice.objects.select_related("provider"),
        key=lambda r: (r.provider is not None, r.provider.name if r.provider else "", r.model),
    )
    return [
        ({"provider": r.provider.name} if r.provider else {})
        | {
            "model": r.model,
            "input_per_million": decimal_text(r.input_per_million),
            "output_per_million": decimal_text(r.output_per_million),
        }
        for r in rows
    ]


def _members(memberships: Any) -> list[dict[str, str]]:
    rows = sorted(memberships.select_related("user"), key=lambda m: m.user.get_username())
    return [{"user": m.user.get_username(), "role": m.role} for m in rows]


def _api_key(key: ApiKey) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": key.name,
        "prefix": key.prefix,
        "routes": sorted(r.name for r in key.allowed_routes.all()),
    }
    if key.expires_at is not None:
        item["expires_at"] = key.expires_at.astimezone(UTC)
    item["revoked"] = key.revoked_at is not None
    return item


def _team(team: Team) -> dict[str, Any]:
    return {
        "slug": team.slug,
        "name": team.name,
        "log_prompts": team.log_prompts,
        "playground_history_visible_to_admins": team.playground_history_visible_to_admins,
        "routes": sorted(team.allowed_routes.values_list("name", flat=True)),
        "members": _members(team.memberships),
        "api_keys": [
            _api_key(k) for k in team.api_keys.prefetch_related("allowed_routes").order_by("name")
        ],
    }


def _organisation(org: Organisation) -> dict[str, Any]:
    return {
        "slug": org.slug,
        "name": org.name,
        "audit_retention_days": org.audit_retention_days,
        "members": _members(org.memberships),
        "teams": [_team(t) for t in org.teams.order_by("slug")],
    }


def export_data(skipped: list[str] | None = None) -> dict[str, Any]:
    """``skipped`` collects the options left out because they look like secrets."""
    skipped = [] if skipped is None else skipped
    return {
        "version": VERSION,
        "providers": [_provider(p, skipped) for p in Provider.objects.order_by("name")],
        "routes": [_route(r) for r in Route.objects.order_by("name")],
        "prices": _prices(),
        "organisations": [_organisation(o) for o in Organisation.objects.order_by("slug")],
        "limits": export_limits(),
        "guardrails": export_guardrails(),
    }


class _Dumper(yaml.SafeDumper):
    """Indented block lists, like the documented example; lists of names inline."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    inline = all(isinstance(item, str) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_Dumper.add_representer(list, _represent_list)


def export_yaml(skipped: list[str] | None = None) -> str:
    body = yaml.dump(
        export_data(skipped), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return HEADER + body

"""Export the database as a gateway.yaml (version 1). Never writes a secret.

Environment-variable credentials export as ``secret: env:NAME``; encrypted ones as
``secret: stored`` ("keep what is stored"); API keys export without a secret, with their
display ``prefix`` for recognition (apply ignores it). Retired credentials are left out (apply
retires whatever a declared provider does not list). Ordering is deterministic.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import yaml

from aigateway.config_as_code.schema import STORED, VERSION
from aigateway.routing.models import Route
from auth.models import ApiKey, Organisation, Team
from providers.models import CredentialStatus, Provider

HEADER = """\
# aigateway configuration (python manage.py gateway export). Apply with:
#   python manage.py gateway apply gateway.yaml --dry-run   # then without --dry-run
# Secrets are never exported: 'env:NAME' is read from the environment, 'stored' keeps the
# encrypted secret in the database; API keys keep their stored hash ('prefix' is informational).
"""


def _provider(provider: Provider) -> dict[str, Any]:
    credentials = [
        {"name": c.name, "secret": f"env:{c.env_var}" if c.env_var else STORED}
        for c in provider.credentials.filter(status=CredentialStatus.ACTIVE).order_by("name")
    ]
    return {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "enabled": provider.enabled,
        "credentials": credentials,
    }


def _route(route: Route) -> dict[str, Any]:
    deployments = []
    for d in route.deployments.select_related("provider", "credential").order_by("priority", "id"):
        item: dict[str, Any] = {"provider": d.provider.name, "model": d.upstream_model}
        if d.credential is not None:
            item["credential"] = d.credential.name
        deployments.append(item | {"weight": d.weight, "enabled": d.enabled})
    return {
        "name": route.name,
        "description": route.description,
        "strategy": route.strategy,
        "deployments": deployments,
    }


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
        "members": _members(org.memberships),
        "teams": [_team(t) for t in org.teams.order_by("slug")],
    }


def export_data() -> dict[str, Any]:
    return {
        "version": VERSION,
        "providers": [_provider(p) for p in Provider.objects.order_by("name")],
        "routes": [_route(r) for r in Route.objects.order_by("name")],
        "organisations": [_organisation(o) for o in Organisation.objects.order_by("slug")],
    }


class _Dumper(yaml.SafeDumper):
    """Indented block lists, like the documented example; lists of names inline."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    inline = all(isinstance(item, str) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_Dumper.add_representer(list, _represent_list)


def export_yaml() -> str:
    body = yaml.dump(export_data(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body

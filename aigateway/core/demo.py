"""The demo set-up for `make run`: an organisation, a team, an admin and a demo route."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from aigateway.routing.models import Deployment, Route
from auth.models import ApiKey, Organisation, OrgMembership, OrgRole, Team, TeamMembership, TeamRole
from auth.services import api_key_create
from providers.models import Provider, ProviderKind

DEMO_USERNAME = "admin"
DEMO_ROUTE = "demo"


@dataclass(frozen=True)
class DemoCredentials:
    username: str
    password: str | None  # None when the account already existed (not shown again)
    api_key: str | None


@transaction.atomic
def demo_seed() -> DemoCredentials:
    """Idempotent: creates what is missing and returns fresh secrets only for new objects."""
    org, _ = Organisation.objects.get_or_create(slug="demo", defaults={"name": "Demo organisation"})
    team, _ = Team.objects.get_or_create(
        organisation=org, slug="demo-team", defaults={"name": "Demo team"}
    )
    provider, _ = Provider.objects.get_or_create(name="demo", defaults={"kind": ProviderKind.DEMO})
    route, _ = Route.objects.get_or_create(
        name=DEMO_ROUTE, defaults={"description": "Local demo provider: deterministic, offline"}
    )
    if not route.deployments.exists():
        Deployment.objects.create(route=route, provider=provider, upstream_model="demo")
    team.allowed_routes.add(route)

    User = get_user_model()
    password = None
    user = User.objects.filter(username=DEMO_USERNAME).first()
    if user is None:
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user(
            DEMO_USERNAME,
            email="admin@demo.local",
            password=password,
            is_staff=True,
            is_superuser=True,
        )
    OrgMembership.objects.get_or_create(
        user=user, organisation=org, defaults={"role": OrgRole.PLATFORM_ADMIN}
    )
    TeamMembership.objects.get_or_create(
        user=user, team=team, defaults={"role": TeamRole.TEAM_ADMIN}
    )

    raw_key = None
    if not ApiKey.objects.filter(team=team, name="demo-key").exists():
        raw_key = api_key_create(team=team, name="demo-key", created_by=user).raw_key
    return DemoCredentials(username=DEMO_USERNAME, password=password, api_key=raw_key)

"""Small factories for tests: providers, routes, keys. Plain functions over the services."""

from __future__ import annotations

from aigateway.routing.models import Deployment, Route
from auth.models import Team
from auth.services import IssuedApiKey, api_key_create
from providers.models import Provider, ProviderKind
from providers.services import credential_create


def make_provider(
    name: str = "demo", kind: str = ProviderKind.DEMO, base_url: str = "", secret: str = ""
) -> Provider:
    provider, _ = Provider.objects.get_or_create(
        name=name, defaults={"kind": kind, "base_url": base_url}
    )
    if secret:
        credential_create(provider=provider, name="primary", secret=secret)
    return provider


def make_route(name: str, *providers_and_models: tuple[Provider, str]) -> Route:
    route = Route.objects.create(name=name)
    for priority, (provider, model) in enumerate(providers_and_models):
        Deployment.objects.create(
            route=route, provider=provider, upstream_model=model, priority=priority
        )
    return route


def make_key(team: Team, *routes: Route, name: str = "key", **kwargs: object) -> IssuedApiKey:
    team.allowed_routes.add(*routes)
    return api_key_create(team=team, name=name, **kwargs)  # type: ignore[arg-type]

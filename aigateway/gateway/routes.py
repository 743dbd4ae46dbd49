"""Resolve the model name a caller asked for into the deployments that may serve it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aigateway.core.config_cache import config_cache
from aigateway.gateway.cache import CachePolicy
from aigateway.gateway.errors import ModelNotFound
from aigateway.gateway.principal import Principal
from aigateway.quotas.rules import Rule, rules_for_scopes
from providers.base import DeploymentTarget

if TYPE_CHECKING:
    from aigateway.routing.models import Deployment
from providers.crypto import SecretDecryptionError, fingerprint

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    timeout: float = 600.0
    on_errors: bool = True
    on_rate_limit: bool = True
    on_context_window: bool = True
    on_content_filter: bool = False


@dataclass(frozen=True, slots=True)
class RouteConfig:
    name: str
    strategy: str
    deployments: tuple[DeploymentTarget, ...]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    weights: dict[int | None, int] = field(default_factory=dict)
    max_context: dict[int | None, int] = field(default_factory=dict)
    cache: CachePolicy = field(default_factory=CachePolicy)
    # Each deployment's own rpm/tpm limits (what the provider allows us).
    deployment_rules: dict[int | None, list[Rule]] = field(default_factory=dict)


_NO_ROUTE = RouteConfig(name="", strategy="", deployments=())  # cached negative answer


def deployment_target(deployment: Deployment) -> DeploymentTarget | None:
    """What an adapter needs to call this deployment (secret included), or None when its
    credential cannot be decrypted (logged by fingerprint)."""
    from providers.models import CredentialStatus

    credential = deployment.credential
    if credential is None or credential.status != CredentialStatus.ACTIVE:
        # Pinned credentials that are retiring/retired give way to the provider's newest.
        credential = deployment.provider.active_credential()
    api_key = ""
    if credential is not None:
        try:
            api_key = credential.reveal()
        except SecretDecryptionError:
            logger.error(
                "credential %s of provider %s cannot be decrypted; deployment %s skipped",
                credential.fingerprint,
                deployment.provider.name,
                deployment.pk,
            )
            return None
    return DeploymentTarget(
        deployment_id=deployment.pk,
        provider_name=deployment.provider.name,
        provider_kind=deployment.provider.kind,
        upstream_model=deployment.upstream_model,
        base_url=deployment.provider.base_url,
        api_key=api_key,
        credential_fingerprint=fingerprint(api_key) if api_key else "",
        options=tuple(sorted((deployment.provider.options or {}).items())),
    )


def _load_route(name: str) -> RouteConfig:
    from aigateway.routing.models import Deployment, Route

    route = Route.objects.filter(name=name).first()
    if route is None:
        return _NO_ROUTE
    targets = []
    deployments = list(
        Deployment.objects.filter(route=route, enabled=True, provider__enabled=True)
        .select_related("provider", "credential")
        .order_by("priority", "id")
    )
    for deployment in deployments:
        target = deployment_target(deployment)
        if target is not None:
            targets.append(target)
    weights: dict[int | None, int] = {d.pk: d.weight for d in deployments}
    contexts: dict[int | None, int] = {
        d.pk: d.max_context_tokens for d in deployments if d.max_context_tokens
    }
    return RouteConfig(
        name=route.name,
        strategy=route.strategy,
        deployments=tuple(targets),
        policy=RetryPolicy(
            max_retries=route.max_retries,
            backoff_base=route.backoff_base_seconds,
            backoff_cap=route.backoff_cap_seconds,
            timeout=route.timeout_seconds,
            on_errors=route.fallback_on_errors,
            on_rate_limit=route.fallback_on_rate_limit,
            on_context_window=route.fallback_on_context_window,
            on_content_filter=route.fallback_on_content_filter,
        ),
        weights=weights,
        max_context=contexts,
        deployment_rules=_deployment_rules([d.pk for d in deployments]),
        cache=CachePolicy(
            mode=route.cache_mode,
            scope=route.cache_scope,
            ttl_seconds=route.cache_ttl_seconds,
            semantic=route.semantic_cache,
            semantic_threshold=route.semantic_threshold,
        ),
    )


def _deployment_rules(deployment_ids: list[int]) -> dict[int | None, list[Rule]]:
    rules: dict[int | None, list[Rule]] = {}
    for rule in rules_for_scopes([("deployment", pk) for pk in deployment_ids]):
        if rule.kind in ("rpm", "tpm"):  # deployments take per-minute limits only
            rules.setdefault(rule.scope_id, []).append(rule)
    return rules


async def route_resolve(principal: Principal, model: str) -> RouteConfig:
    """The route for ``model`` if this principal may use it; else 404, as OpenAI does for
    models a key cannot see (so route names do not leak across teams)."""
    if model not in principal.allowed_routes:
        raise ModelNotFound(
            f"The model '{model}' does not exist or you do not have access to it.", param="model"
        )
    route = await config_cache.get_or_load(("route", model), _load_route, model)
    if route is _NO_ROUTE:
        raise ModelNotFound(f"The model '{model}' does not exist.", param="model")
    return route

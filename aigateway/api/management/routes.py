"""Routes and their deployments (read-only here: gateway.yaml and the Django admin change
them). Platform admins, auditors and gateway operators read them."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch
from django.http import HttpRequest
from ninja import Router, Schema

from aigateway.api.management.common import IdPath
from aigateway.api.management.security import current_user
from aigateway.routing.models import Deployment, Route
from aigateway.web.permissions import require_gateway_reader

router = Router(tags=["routes"])


class DeploymentOut(Schema):
    id: int
    route: str
    provider: str
    upstream_model: str
    priority: int
    weight: int
    enabled: bool
    max_context_tokens: int | None
    last_probe_at: datetime | None
    last_probe_ok: bool | None
    last_probe_latency_ms: float | None
    last_probe_error: str


class RouteOut(Schema):
    id: int
    name: str
    description: str
    strategy: str
    max_retries: int
    timeout_seconds: float
    cache_mode: str
    cache_scope: str
    semantic_cache: bool
    deployments: list[DeploymentOut]


class RouteList(Schema):
    data: list[RouteOut]


class DeploymentList(Schema):
    data: list[DeploymentOut]


def deployment_out(d: Deployment) -> DeploymentOut:
    return DeploymentOut(
        id=d.pk, route=d.route.name, provider=d.provider.name, upstream_model=d.upstream_model,
        priority=d.priority, weight=d.weight, enabled=d.enabled,
        max_context_tokens=d.max_context_tokens, last_probe_at=d.last_probe_at,
        last_probe_ok=d.last_probe_ok, last_probe_latency_ms=d.last_probe_latency_ms,
        last_probe_error=d.last_probe_error,
    )  # fmt: skip


def route_out(r: Route) -> RouteOut:
    return RouteOut(
        id=r.pk, name=r.name, description=r.description, strategy=r.strategy,
        max_retries=r.max_retries, timeout_seconds=r.timeout_seconds, cache_mode=r.cache_mode,
        cache_scope=r.cache_scope, semantic_cache=r.semantic_cache,
        deployments=[deployment_out(d) for d in r.deployments.all()],
    )  # fmt: skip


def _routes(**filters: object) -> list[Route]:
    deployments = Deployment.objects.select_related("route", "provider")
    routes = Route.objects.filter(**filters).order_by("name")
    return list(routes.prefetch_related(Prefetch("deployments", deployments)))


@router.get("/routes", response=RouteList, summary="Routes and their deployments")
def list_routes(request: HttpRequest) -> RouteList:
    require_gateway_reader(current_user(request))
    return RouteList(data=[route_out(r) for r in _routes()])


@router.get("/routes/{route_id}", response=RouteOut, summary="One route")
def get_route(request: HttpRequest, route_id: IdPath) -> RouteOut:
    require_gateway_reader(current_user(request))
    routes = _routes(pk=route_id)
    if not routes:
        raise Route.DoesNotExist
    return route_out(routes[0])


@router.get("/deployments", response=DeploymentList, summary="Every deployment")
def list_deployments(request: HttpRequest) -> DeploymentList:
    require_gateway_reader(current_user(request))
    rows = Deployment.objects.select_related("route", "provider").order_by(
        "route__name", "priority", "pk"
    )
    return DeploymentList(data=[deployment_out(d) for d in rows])


@router.get("/deployments/{deployment_id}", response=DeploymentOut, summary="One deployment")
def get_deployment(request: HttpRequest, deployment_id: IdPath) -> DeploymentOut:
    require_gateway_reader(current_user(request))
    return deployment_out(Deployment.objects.select_related("route", "provider").get(
        pk=deployment_id))  # fmt: skip

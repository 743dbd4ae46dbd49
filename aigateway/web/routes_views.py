"""The Routes page: each route's deployments, strategy, retries, failover and cache settings,
live health per deployment (an htmx fragment polled every 5 seconds), and creating and
deleting routes and adding, changing and removing deployments
(aigateway/routing/route_services.py).

Who: as the Providers page (aigateway/web/providers_views.py): editors change, other
platform admins and auditors read, team admins and members get 403 (their teams' route
names are on the overview page; deployments, providers and health are operator
information), anonymous users the login page. The health fragment is checked like the page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from aigateway.core.rows import is_row_id
from aigateway.routing.models import Deployment, Route
from aigateway.routing.route_services import (
    RouteSettings,
    deployment_create,
    deployment_delete,
    deployment_update,
    route_create,
    route_delete,
    route_deletion_preview,
    route_update,
)
from aigateway.web.denied import denied_as_page
from aigateway.web.permissions import (
    can_edit_gateway_config,
    require_gateway_config_editor,
    require_gateway_reader,
)
from aigateway.web.routes_forms import (
    DeploymentForm,
    RouteForm,
    RouteSettingsForm,
    route_initial,
)
from aigateway.web.routes_selectors import deployments_health, routes_overview
from auth.roles import roles_of

_denied = denied_as_page(nav="routes", back_to="web:routes", back_label="Back to routes")
POLL_SECONDS = 5
MAX_HEALTH_IDS = 1000


def _actor(request: HttpRequest) -> Any:
    return request.user


def _health_of(routes: list[Any]) -> dict[int, Any]:
    """Each deployment's live health, also set as ``deployment.health`` for the templates
    (the prefetched rows are the objects the templates iterate over)."""
    rows = [d for r in routes for d in r.deployments.all()]
    health = deployments_health(rows)
    for d in rows:
        d.health = health.get(d.pk)
    return health


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def routes_page(request: HttpRequest) -> HttpResponse:
    require_gateway_reader(request.user)
    form = RouteForm(request.POST or None, initial=route_initial(RouteSettings()))
    if request.method == "POST":
        require_gateway_config_editor(request.user)
        if form.is_valid():
            try:
                route = route_create(
                    name=form.cleaned_data["name"], settings=form.settings(), actor=_actor(request)
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(
                    request,
                    f"Created the route {route.name}. Next: add a "
                    "deployment, and give the route to teams.",
                )
                return redirect("web:route", pk=route.pk)
    routes = routes_overview()
    context = {
        "nav": "routes",
        "routes": routes,
        "health": _health_of(routes),
        "health_ids": _ids(routes),
        "form": form,
        "can_edit": can_edit_gateway_config(request.user),
        "poll": POLL_SECONDS,
    }
    return render(request, "web/routes.html", context, status=400 if form.is_bound else 200)


def _detail(request: HttpRequest, pk: int, status: int = 200, **forms: Any) -> HttpResponse:
    found = routes_overview(pk=pk)
    if not found:
        raise Http404(f"There is no route #{pk}.")
    route = found[0]
    settings_initial = route_initial(RouteSettings.of(route))
    roles = roles_of(request.user)
    context = {
        "nav": "routes",
        "route": route,
        # The route serves every organisation, its readers do not: name only the teams of
        # organisations the user administers or audits (issue #13, no cross-tenant reads).
        "teams": [
            t for t in route.teams.all() if roles.superuser or t.organisation_id in roles.wide_orgs
        ],
        "health": _health_of(found),
        "health_ids": _ids(found),
        "can_edit": can_edit_gateway_config(request.user),
        "settings_form": forms.get("settings_form") or RouteSettingsForm(initial=settings_initial),
        "deployment_form": forms.get("deployment_form")
        or DeploymentForm(initial={"weight": 1, "enabled": True}),
        "poll": POLL_SECONDS,
    }
    return render(request, "web/routes/detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def route_page(request: HttpRequest, pk: int) -> HttpResponse:
    require_gateway_reader(request.user)
    if request.method == "GET":
        return _detail(request, pk)
    require_gateway_config_editor(request.user)
    route = get_object_or_404(Route, pk=pk)
    form = RouteSettingsForm(request.POST)
    if form.is_valid():
        try:
            route_update(route=route, settings=form.settings(), actor=_actor(request))
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Saved the settings of {route.name}.")
            return redirect("web:route", pk=pk)
    return _detail(request, pk, 400, settings_form=form)


@login_required
@require_http_methods(["POST"])
@_denied
def deployment_add(request: HttpRequest, pk: int) -> HttpResponse:
    require_gateway_config_editor(request.user)
    route = get_object_or_404(Route, pk=pk)
    form = DeploymentForm(request.POST)
    if form.is_valid():
        try:
            deployment = deployment_create(route=route, values=form.values(), actor=_actor(request))
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request,
                f"Added {deployment.provider.name}:{deployment.upstream_model} to {route.name}.",
            )
            return redirect("web:route", pk=pk)
    return _detail(request, pk, 400, deployment_form=form)


def _deployment(pk: int) -> Deployment:
    return get_object_or_404(Deployment.objects.select_related("route", "provider"), pk=pk)


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def deployment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    require_gateway_config_editor(request.user)
    deployment = _deployment(pk)
    initial = {
        "provider": deployment.provider_id,
        "upstream_model": deployment.upstream_model,
        "credential": deployment.credential_id,
        "weight": deployment.weight,
        "position": deployment.priority,
        "max_context_tokens": deployment.max_context_tokens,
        "enabled": deployment.enabled,
    }
    form = DeploymentForm(request.POST or None, initial=initial)
    if form.is_valid():
        try:
            deployment_update(deployment=deployment, values=form.values(), actor=_actor(request))
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Saved the deployment {deployment}.")
            return redirect("web:route", pk=deployment.route_id)
    context = {"nav": "routes", "deployment": deployment, "form": form}
    status = 400 if form.is_bound else 200
    return render(request, "web/routes/deployment_edit.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def deployment_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST removes."""
    require_gateway_config_editor(request.user)
    deployment = _deployment(pk)
    if request.method == "POST":
        route_id, label = deployment.route_id, str(deployment)
        deployment_delete(deployment=deployment, actor=_actor(request))
        messages.success(request, f"Removed the deployment {label}.")
        return redirect("web:route", pk=route_id)
    context = {"nav": "routes", "deployment": deployment}
    return render(request, "web/routes/deployment_remove.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def route_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """GET shows what goes with the route and asks for confirmation; POST deletes it (400 on
    the same page when a key would be widened: see route_delete)."""
    require_gateway_config_editor(request.user)
    route = get_object_or_404(Route, pk=pk)
    status, error = 200, ""
    if request.method == "POST":
        try:
            route_delete(route=route, actor=_actor(request))
        except ValidationError as exc:
            status, error = 400, " ".join(exc.messages)
        else:
            messages.success(request, f"Deleted the route {route.name}.")
            return redirect("web:routes")
    context = {"nav": "routes", "route": route, "plan": route_deletion_preview(route),
               "error": error}  # fmt: skip
    return render(request, "web/routes/route_delete.html", context, status=status)


@login_required
@require_GET
@_denied
def routes_health(request: HttpRequest) -> HttpResponse:
    """The htmx fragment: the health cells of the deployments a page shows (``?ids=3,4``) as
    out-of-band swaps, so nothing else on the page (and not the keyboard focus) moves. Only
    cells the page has are sent: htmx reports a swap without a target as an error."""
    require_gateway_reader(request.user)
    text = request.GET.get("ids", "")
    parts = [p for p in text.split(",") if p]
    if len(parts) > MAX_HEALTH_IDS or not all(is_row_id(p) for p in parts):
        return HttpResponseBadRequest("ids: up to 1000 deployment ids, comma-separated.")
    deployments = Deployment.objects.filter(pk__in=[int(p) for p in parts])
    return render(request, "web/routes/health.html", {"health": deployments_health(deployments)})


def _ids(routes: list[Route]) -> str:
    return ",".join(str(d.pk) for r in routes for d in r.deployments.all())

"""Circuit breakers: live state per deployment, recent transitions, force/reset (audited)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from aigateway.routing.models import BreakerEvent, Deployment
from aigateway.routing.services import breaker_force, breakers_list
from aigateway.web.permissions import (
    can_manage_gateway,
    require_gateway_manager,
    require_gateway_reader,
)

ACTIONS = {"open": "open", "close": "closed", "reset": "reset"}


def _context(request: HttpRequest) -> dict[str, object]:
    events = BreakerEvent.objects.select_related(
        "deployment__route", "deployment__provider", "actor"
    )[:50]
    return {
        "rows": breakers_list(),
        "events": events,
        "can_manage": can_manage_gateway(request.user),
        "nav": "breakers",
    }


@login_required
def breakers_page(request: HttpRequest) -> HttpResponse:
    require_gateway_reader(request.user)
    return render(request, "web/breakers.html", _context(request))


@login_required
def breakers_fragment(request: HttpRequest) -> HttpResponse:
    """The live table alone, refreshed by htmx; checked like the page."""
    require_gateway_reader(request.user)
    return render(request, "web/breakers.html#breaker-table", _context(request))


@login_required
@require_POST
def breaker_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    require_gateway_manager(request.user)
    deployment = get_object_or_404(Deployment, pk=pk)
    mode = ACTIONS.get(action)
    reason = request.POST.get("reason", "").strip()
    if mode is None:
        messages.error(request, "Unknown action.")
    elif not reason:
        messages.error(request, "Please give a reason: it is kept in the breaker's history.")
    elif request.POST.get("confirm") != "yes":
        messages.error(request, "Please tick the confirmation box.")
    else:
        actor = request.user if isinstance(request.user, AbstractBaseUser) else None
        transition = breaker_force(deployment=deployment, mode=mode, reason=reason, actor=actor)
        messages.success(request, f"{deployment}: {transition.from_state} → {transition.to_state}.")
    return redirect("web:breakers")

"""Circuit breakers: live state and failure counts per deployment, their history, and forcing
one open or closed or resetting it (with a confirmation and a reason; stored with the
transition and audited by aigateway/routing/services.py).

Who: whoever may edit routes forces and resets (gateway operators and platform admins of
every organisation: aigateway/web/permissions.py); other platform admins and auditors read;
team roles get 403. The live fragment is checked like the page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from aigateway.core.rows import is_row_id
from aigateway.routing.models import Deployment
from aigateway.routing.services import breaker_force, breaker_history, breakers_list
from aigateway.web.permissions import (
    can_edit_gateway_config,
    require_breaker_controller,
    require_gateway_reader,
)

ACTIONS = {"open": "open", "close": "closed", "reset": "reset"}
POLL_SECONDS = 5
MAX_IDS = 1000


def _history_of(request: HttpRequest) -> Deployment | None:
    """``?deployment=<id>`` narrows the history to one deployment (404 if there is none)."""
    text = request.GET.get("deployment", "")
    if not text:
        return None
    if not is_row_id(text):
        raise Http404("There is no such deployment.")
    return get_object_or_404(Deployment.objects.select_related("route", "provider"), pk=int(text))


@login_required
@require_GET
def breakers_page(request: HttpRequest) -> HttpResponse:
    require_gateway_reader(request.user)
    only = _history_of(request)
    rows = breakers_list()
    context = {
        "rows": rows,
        "ids": ",".join(str(row.deployment.pk) for row in rows),
        "history_of": only,
        "events": breaker_history(deployment_id=only.pk if only else None),
        "can_manage": can_edit_gateway_config(request.user),
        "poll": POLL_SECONDS,
        "nav": "breakers",
    }
    return render(request, "web/breakers.html", context)


@login_required
@require_GET
def breakers_fragment(request: HttpRequest) -> HttpResponse:
    """htmx polling: the state, failure-count and probe cells of the deployments the page
    shows (``?ids=3,4``) and the history table, as out-of-band swaps, so the open "Change…"
    forms (and what the user typed in them) stay put. Checked like the page."""
    require_gateway_reader(request.user)
    parts = [p for p in request.GET.get("ids", "").split(",") if p]
    if len(parts) > MAX_IDS or not all(is_row_id(p) for p in parts):
        return HttpResponseBadRequest("ids: up to 1000 deployment ids, comma-separated.")
    only = _history_of(request)
    context = {
        "rows": breakers_list(deployment_ids=[int(p) for p in parts]) if parts else [],
        "history_of": only,
        "events": breaker_history(deployment_id=only.pk if only else None),
    }
    return render(request, "web/breakers/live.html", context)


@login_required
@require_POST
def breaker_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    require_breaker_controller(request.user)
    deployment = get_object_or_404(Deployment.objects.select_related("route", "provider"), pk=pk)
    mode = ACTIONS.get(action)
    if mode is None:
        raise Http404("There is no such breaker action.")
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Nothing changed: please tick the confirmation box.")
        return redirect("web:breakers")
    actor = request.user if isinstance(request.user, AbstractBaseUser) else None
    try:
        transition = breaker_force(
            deployment=deployment, mode=mode, reason=request.POST.get("reason", ""), actor=actor
        )
    except ValueError as exc:  # no reason, or too long a one
        messages.error(request, f"Nothing changed. {exc}")
    else:
        messages.success(request, f"{deployment}: {transition.from_state} → {transition.to_state}.")
    return redirect("web:breakers")

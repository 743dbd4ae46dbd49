"""The Limits page: the limits a user may see with live usage, setting, changing and deleting
limits, and open quota alerts. Views only parse the request, call a service or selector and
render; who may do what is decided by aigateway.quotas.permissions.

Status codes: a limit the user may not see is 404 (as if it did not exist); one they may see
but not change is 403; an invalid form is 400, re-rendered with its errors.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aigateway.quotas.models import Limit, LimitKind, QuotaAlert
from aigateway.quotas.permissions import Target, limit_require_manage, limit_require_view
from aigateway.quotas.selectors import limits_visible_to
from aigateway.quotas.services import (
    alert_acknowledge,
    amount_text,
    limit_delete,
    limit_describe,
    limit_set,
)
from aigateway.web.denied import denied_as_page
from aigateway.web.forms import DashboardForm

TARGET = re.compile(r"^(org|team|key|user|deployment):(\d{1,18})$")
FIELDS = ("value", "burst", "soft_threshold_percent", "enabled")


class LimitValuesForm(DashboardForm):
    """The numbers of a limit. Parsing only: the service validates (value > 0, burst…)."""

    value = forms.DecimalField(
        label="Limit",
        error_messages={"required": "Enter the limit.", "invalid": "The limit must be a number."},
        help_text="Per minute for rate limits, per day or month for budgets (in USD for cost "
        "budgets), at the same time for concurrency.",
    )
    burst = forms.DecimalField(
        label="Burst",
        required=False,
        error_messages={"invalid": "The burst must be a number."},
        help_text="Per-minute limits only: how much may be taken at once (at least the limit). "
        "Leave empty to use the limit itself.",
    )
    soft_threshold_percent = forms.IntegerField(
        label="Soft threshold (%)",
        initial=80,
        error_messages={
            "required": "Enter the soft threshold.",
            "invalid": "The soft threshold must be a whole percentage from 1 to 100.",
        },
        help_text="An alert is raised when a budget's use crosses this share of the limit.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)


class LimitForm(LimitValuesForm):
    """A new limit (or a change to the existing one of that kind on that target)."""

    target = forms.CharField(
        label="Applies to", error_messages={"required": "Choose what the limit applies to."}
    )
    kind = forms.ChoiceField(
        label="Kind",
        choices=LimitKind.choices,
        error_messages={"required": "Choose a kind of limit.",
                        "invalid_choice": "Choose a kind of limit."},
    )  # fmt: skip
    field_order = ("target", "kind", *FIELDS)
    service_fields = {"scope": "target"}

    def clean_target(self) -> tuple[str, int]:
        match = TARGET.match(self.cleaned_data["target"])
        if match is None:
            raise ValidationError("Choose what the limit applies to.")
        return match.group(1), int(match.group(2))


_denied_as_page = denied_as_page(nav="limits", back_to="web:limits", back_label="Back to limits")


def _visible_limit(request: HttpRequest, pk: int) -> tuple[Limit, Target]:
    """The limit and its target, or 404 if the user may not see it."""
    limit = get_object_or_404(Limit, pk=pk)
    try:
        return limit, limit_require_view(request.user, limit)
    except PermissionDenied:
        raise Http404("There is no such limit.") from None


def _values(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": data["value"],
        "burst": data["burst"],
        "soft_threshold_percent": data["soft_threshold_percent"],
        "enabled": data["enabled"],
    }


@login_required
@require_http_methods(["GET", "POST"])
@_denied_as_page
def limits_page(request: HttpRequest) -> HttpResponse:
    form = LimitForm(request.POST or None, initial={"enabled": True})
    if form.is_valid():
        scope, scope_id = form.cleaned_data["target"]
        try:
            limit = limit_set(
                actor=request.user,  # type: ignore[arg-type]
                scope=scope,
                scope_id=scope_id,
                kind=form.cleaned_data["kind"],
                **_values(form.cleaned_data),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return _saved(request, limit)
    overview = limits_visible_to(request.user)
    context = {"nav": "limits", "overview": overview, "form": form}
    return render(request, "web/limits.html", context, status=400 if form.is_bound else 200)


def _saved(request: HttpRequest, limit: Limit) -> HttpResponse:
    target = limit_require_view(request.user, limit)
    messages.success(request, f"Saved the limit: {limit_describe(limit.kind, target)}.")
    return redirect("web:limits")


@login_required
@require_http_methods(["GET", "POST"])
@_denied_as_page
def limit_edit(request: HttpRequest, pk: int) -> HttpResponse:
    limit, target = _visible_limit(request, pk)
    limit_require_manage(request.user, scope=limit.scope, scope_id=limit.scope_id)
    initial = {name: getattr(limit, name) for name in FIELDS}
    initial["value"], initial["burst"] = amount_text(limit.value), amount_text(limit.burst)
    form = LimitValuesForm(request.POST or None, initial=initial)
    if form.is_valid():
        try:
            limit = limit_set(
                actor=request.user,  # type: ignore[arg-type]
                scope=limit.scope,
                scope_id=limit.scope_id,
                kind=limit.kind,
                **_values(form.cleaned_data),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return _saved(request, limit)
    context = {
        "nav": "limits",
        "form": form,
        "limit": limit,
        "description": limit_describe(limit.kind, target),
    }
    return render(request, "web/limits/edit.html", context, status=400 if form.is_bound else 200)


@login_required
@require_http_methods(["GET", "POST"])
@_denied_as_page
def limit_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    limit, target = _visible_limit(request, pk)
    limit_require_manage(request.user, scope=limit.scope, scope_id=limit.scope_id)
    description = limit_describe(limit.kind, target)
    if request.method == "POST":
        limit_delete(actor=request.user, limit=limit)  # type: ignore[arg-type]
        messages.success(request, f"Deleted the limit: {description}.")
        return redirect("web:limits")
    context = {"nav": "limits", "limit": limit, "description": description}
    return render(request, "web/limits/delete.html", context)


@login_required
@require_POST
@_denied_as_page
def alert_acknowledge_view(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(QuotaAlert.objects.select_related("limit"), pk=pk)
    _visible_limit(request, alert.limit_id)
    alert_acknowledge(actor=request.user, alert=alert)  # type: ignore[arg-type]
    messages.success(request, "Alert acknowledged.")
    return redirect("web:limits")


@login_required
@require_GET
def limits_usage(request: HttpRequest) -> HttpResponse:
    """The htmx fragment: live usage of the limits this user may see, as out-of-band swaps
    of each row's usage cell (so nothing else on the page, and not the focus, moves)."""
    overview = limits_visible_to(request.user, with_alerts=False)
    return render(request, "web/limits/usage.html", {"overview": overview})

"""The overview's two live parts, loaded by htmx after the page (so the page itself stays a
fixed handful of queries): usage charts for a period, and the to-do list.

Both are open to every signed-in user; what they show is scoped by role (members their own
calls, team admins their teams', platform admins and auditors their organisations'; the to-do
items as ``aigateway.web.todo`` says). Without htmx, each URL is also a page of its own.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from aigateway.usage.timeseries import DEFAULT_PERIOD, PERIODS, usage_timeseries
from aigateway.web.todo import todo_for_user
from auth.models import TeamRole
from auth.roles import roles_of


def period_from(request: HttpRequest) -> tuple[str, str | None]:
    """The period asked for, and an error sentence for one that does not exist."""
    period = request.GET.get("period", DEFAULT_PERIOD)
    if period not in PERIODS:
        choices = ", ".join(f"'{p}'" for p in PERIODS)
        return DEFAULT_PERIOD, f"There is no period '{period[:40]}': choose {choices}."
    return period, None


def scope_sentence(request: HttpRequest) -> str:
    """Whose calls the numbers count, in words."""
    roles = roles_of(request.user)
    if roles.superuser:
        return "Every call through the gateway."
    if roles.wide_orgs:
        return "Every call of your organisation."
    if TeamRole.TEAM_ADMIN in roles.team_roles.values():
        return "Calls of the teams you administer, and your own."
    return "Your own calls (made in your name or with keys you created)."


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@login_required
@require_GET
def overview_metrics(request: HttpRequest) -> HttpResponse:
    period, error = period_from(request)
    context: dict[str, Any] = {
        "nav": "overview",
        "period": period,
        "periods": PERIODS,
        "error": error,
        "scope": scope_sentence(request),
    }
    if error is None:
        context["series"] = usage_timeseries(user=request.user, period=period)
    template = "web/overview/metrics.html"
    response = render(
        request, f"{template}#metrics" if _is_htmx(request) else template, context,
        status=400 if error else 200,
    )  # fmt: skip
    if _is_htmx(request) and error is None:
        # The address bar follows the period chosen, so a reload or a shared link keeps it.
        response["HX-Push-Url"] = f"{reverse('web:dashboard')}?period={period}"
    return response


@login_required
@require_GET
def overview_todo(request: HttpRequest) -> HttpResponse:
    context = {"nav": "overview", "todo": todo_for_user(request.user), "loaded": True}
    template = "web/overview/todo.html"
    return render(request, f"{template}#todo" if _is_htmx(request) else template, context)

"""Dashboard shell. Pages are thin: a selector for the data, a template to render it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from aigateway.usage.timeseries import PERIODS
from aigateway.web.overview_views import period_from
from aigateway.web.selectors import dashboard_summary_for_user


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The overview. Usage charts and the full to-do list load as htmx fragments
    (aigateway/web/overview_views.py), so this page costs a fixed handful of queries."""
    summary = dashboard_summary_for_user(user=request.user)
    period, error = period_from(request)
    context = {"summary": summary, "nav": "overview", "period": period, "periods": PERIODS,
               "period_error": error}  # fmt: skip
    return render(request, "web/dashboard.html", context, status=400 if error else 200)


async def healthz(request: HttpRequest) -> HttpResponse:
    """Process is alive. Reveals nothing else."""
    return JsonResponse({"status": "ok"})

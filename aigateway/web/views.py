"""Dashboard shell. Pages are thin: a selector for the data, a template to render it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from aigateway.web.selectors import dashboard_summary_for_user


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    summary = dashboard_summary_for_user(user=request.user)
    return render(request, "web/dashboard.html", {"summary": summary, "nav": "overview"})


async def healthz(request: HttpRequest) -> HttpResponse:
    """Process is alive. Reveals nothing else."""
    return JsonResponse({"status": "ok"})

"""The Usage page: calls filtered by team, user, route, provider and dates; a daily chart,
totals by a chosen dimension, the calls themselves (newest first, cursor-paginated) and the
same calls as a streamed CSV.

Everyone signed in may open it; what it counts is aigateway.usage.aggregates' rule (as for
the management API): members their own calls, team admins their teams', platform admins and
auditors their organisations'. The fragments and the CSV are scoped and filtered exactly
like the page, from the same form. Bad filters are a 400 that says which and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from aigateway.usage.aggregates import UsageRow, usage_aggregate
from aigateway.usage.calls import CallsPage, usage_calls_batches, usage_calls_page
from aigateway.web.csv_export import Cell, csv_response
from aigateway.web.usage_forms import UsageFilterForm
from auth.roles import roles_of

PAGE_SIZE = 50
CSV_HEADER = (
    "time_utc", "request_id", "source", "team", "user", "key_prefix", "route", "provider",
    "upstream_model", "status_code", "error_type", "stream", "input_tokens", "output_tokens",
    "cost_usd", "latency_ms", "ttft_ms", "cache_status",
)  # fmt: skip


def _form(request: HttpRequest) -> UsageFilterForm:
    return UsageFilterForm(request.GET, roles=roles_of(request.user))


def _query(request: HttpRequest) -> str:
    """The filters as a query string, without the page cursor (for links and the CSV)."""
    query = request.GET.copy()
    query.pop("cursor", None)
    return query.urlencode()


def _chart(days: list[UsageRow]) -> dict[str, list[Any]]:
    return {
        "labels": [d.key for d in days],
        "requests": [d.requests for d in days],
        "cost_usd": [float(round(d.cost_usd, 6)) for d in days],
    }


def _totals(days: list[UsageRow]) -> dict[str, Any]:
    requests = sum(d.requests for d in days)
    errors = sum(d.errors for d in days)
    return {
        "requests": requests,
        "errors": errors,
        "input_tokens": sum(d.input_tokens for d in days),
        "output_tokens": sum(d.output_tokens for d in days),
        "cost_usd": sum((d.cost_usd for d in days), Decimal(0)),
        "cache_hits": sum(d.cache_hits for d in days),
        "error_rate": 100 * errors / requests if requests else None,
    }


def _context(request: HttpRequest, form: UsageFilterForm) -> tuple[dict[str, Any], int]:
    """Everything the page shows, or the form's errors with status 400."""
    context: dict[str, Any] = {"nav": "usage", "form": form, "query": _query(request)}
    if not form.is_valid():
        return context, 400
    filters = form.filters()
    try:
        cursor = form.cleaned_data["cursor"] or None
        calls = usage_calls_page(user=request.user, filters=filters, cursor=cursor, limit=PAGE_SIZE)
    except ValueError as exc:
        form.add_error("cursor", str(exc))
        return context, 400
    days = usage_aggregate(user=request.user, group_by="day", filters=filters)
    context.update(
        filters=filters,
        days=days,
        chart=_chart(days),
        totals=_totals(days),
        group_by=form.grouping(),
        groups=usage_aggregate(user=request.user, group_by=form.grouping(), filters=filters),
        calls=calls,
        paged=bool(form.cleaned_data["cursor"]),
    )
    return context, 200


@login_required
@require_GET
def usage_page(request: HttpRequest) -> HttpResponse:
    context, status = _context(request, _form(request))
    return render(request, "web/usage.html", context, status=status)


@login_required
@require_GET
def usage_results_fragment(request: HttpRequest) -> HttpResponse:
    """Everything below the filters (htmx); the address bar follows the filters."""
    context, status = _context(request, _form(request))
    response = render(request, "web/usage.html#usage-results", context, status=status)
    if status == 200:
        response["HX-Push-Url"] = f"{reverse('web:usage')}?{context['query']}"
    return response


@login_required
@require_GET
def usage_calls_fragment(request: HttpRequest) -> HttpResponse:
    """One page of the calls table alone (htmx: older calls)."""
    form = _form(request)
    context: dict[str, Any] = {"nav": "usage", "form": form, "query": _query(request),
                               "calls_only": True}  # fmt: skip
    status = 400
    if form.is_valid():
        try:
            context["calls"] = usage_calls_page(
                user=request.user, filters=form.filters(),
                cursor=form.cleaned_data["cursor"] or None, limit=PAGE_SIZE,
            )  # fmt: skip
            context["paged"] = bool(form.cleaned_data["cursor"])
            status = 200
        except ValueError as exc:
            form.add_error("cursor", str(exc))
    if status != 200:
        context["calls"] = CallsPage([], None)
    return render(request, "web/usage.html#usage-calls", context, status=status)


def _csv_rows(request: HttpRequest, form: UsageFilterForm) -> Iterator[list[list[Cell]]]:
    for batch in usage_calls_batches(user=request.user, filters=form.filters()):
        yield [
            [
                row.record.created_at, row.record.request_id, row.record.source, row.team,
                row.user, row.record.key_prefix, row.record.route, row.record.provider,
                row.record.upstream_model, row.record.status_code, row.record.error_type,
                row.record.stream, row.record.input_tokens, row.record.output_tokens,
                row.record.cost_usd, row.record.latency_ms, row.record.ttft_ms,
                row.record.cache_status,
            ]
            for row in batch
        ]  # fmt: skip


@login_required
@require_GET
def usage_export(request: HttpRequest) -> HttpResponseBase:
    """Every matching call as CSV, newest first, streamed in batches (same scope and
    filters as the page; the page cursor is ignored)."""
    form = _form(request)
    if not form.is_valid():
        context = {"nav": "usage", "form": form, "query": _query(request)}
        return render(request, "web/usage.html", context, status=400)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return csv_response(request, filename=f"aigateway-usage-{stamp}.csv", header=CSV_HEADER,
                        batches=lambda: _csv_rows(request, form))  # fmt: skip

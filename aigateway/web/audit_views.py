"""The audit log page: filtered, newest first, cursor-paginated; and one event in full.

Who reads what is decided by aigateway.audit.search (as for the management API): platform
admins and auditors their organisations' events, gateway operators every event, nobody else
any (403). An event the user may not read is 404, as if it did not exist. The table fragment
(htmx) is checked exactly like the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from aigateway.audit.search import (
    AuditFilters,
    AuditPage,
    audit_can_read,
    audit_event_get_for_user,
    audit_events_batches,
    audit_events_for_user,
)
from aigateway.web.audit_display import audit_event_view, audit_rows
from aigateway.web.csv_export import Cell, csv_response

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    action = forms.CharField(
        required=False, max_length=100, help_text="Exact, or a prefix ending in '.' (team.)"
    )
    actor = forms.CharField(
        required=False, max_length=200, help_text="Exact: a username or 'key <prefix>'."
    )
    request_id = forms.CharField(required=False, max_length=100, label="Request id")
    since = forms.DateField(required=False, label="From (UTC)",
                            widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    until = forms.DateField(required=False, label="To (UTC, inclusive)",
                            widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    cursor = forms.CharField(required=False, max_length=20, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        since, until = data["since"], data["until"]
        return AuditFilters(
            action=data["action"].strip() or None,
            actor=data["actor"].strip() or None,
            target_type="api_call" if data["request_id"].strip() else None,
            target_id=data["request_id"].strip() or None,
            since=datetime.combine(since, time.min, UTC) if since else None,
            # "To" names a whole day: everything before the next midnight.
            until=datetime.combine(until + timedelta(days=1), time.min, UTC) if until else None,
        )


def _table(request: HttpRequest) -> tuple[dict[str, Any], int]:
    """The filter form and one page of events (raises PermissionDenied before any parsing
    for users who may read nothing). Returns the template context and its status."""
    if not audit_can_read(request.user):
        raise PermissionDenied("Only platform admins and auditors can read the audit log.")
    form = AuditFilterForm(request.GET)
    page, status = AuditPage([], None), 400
    if form.is_valid():
        try:
            page = audit_events_for_user(
                request.user, filters=form.filters(), cursor=form.cleaned_data["cursor"] or None,
                limit=PAGE_SIZE,
            )  # fmt: skip
            status = 200
        except ValueError as exc:
            form.add_error("cursor", str(exc))
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "nav": "audit",
        "form": form,
        "rows": audit_rows(page.events),
        "next_cursor": page.next_cursor,
        "query": query.urlencode(),
        "paged": bool(request.GET.get("cursor")),
    }
    return context, status


@login_required
@require_GET
def audit_page(request: HttpRequest) -> HttpResponse:
    context, status = _table(request)
    return render(request, "web/audit.html", context, status=status)


@login_required
@require_GET
def audit_rows_fragment(request: HttpRequest) -> HttpResponse:
    """The table alone, for htmx (filters and older pages); checked like the page."""
    context, status = _table(request)
    return render(request, "web/audit.html#audit-table", context, status=status)


EXPORT_HEADER = (
    "sequence", "time_utc", "actor", "action", "target_type", "target_id", "target_label",
    "organisation", "team", "result", "request_id", "details",
)  # fmt: skip


def _export_rows(request: HttpRequest, filters: AuditFilters) -> Iterator[list[list[Cell]]]:
    for events in audit_events_batches(request.user, filters=filters):
        yield [
            [
                row.event.sequence, row.event.created_at, row.event.actor_label,
                row.event.action, row.event.target_type, row.event.target_id,
                row.event.target_label, row.organisation, row.team, row.status,
                row.request_id,
                json.dumps(row.event.details, sort_keys=True, ensure_ascii=False),
            ]
            for row in audit_rows(events)
        ]  # fmt: skip


@login_required
@require_GET
def audit_export(request: HttpRequest) -> HttpResponseBase:
    """Every event matching the page's filters as CSV, newest first, streamed in batches:
    checked and filtered exactly like the page (the page cursor is ignored)."""
    if not audit_can_read(request.user):
        raise PermissionDenied("Only platform admins and auditors can read the audit log.")
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        context, _ = _table(request)
        return render(request, "web/audit.html", context, status=400)
    filters = form.filters()
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return csv_response(request, filename=f"aigateway-audit-{stamp}.csv", header=EXPORT_HEADER,
                        batches=lambda: _export_rows(request, filters))  # fmt: skip


@login_required
@require_GET
def audit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = audit_event_get_for_user(request.user, pk)
    context = {"nav": "audit", "view": audit_event_view(event)}
    return render(request, "web/audit_detail.html", context)

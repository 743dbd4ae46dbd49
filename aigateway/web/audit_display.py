"""Audit events as the audit log page shows them: table rows with names instead of ids, and
an event's details laid out for reading (an API call's decision trace, an admin change's
before and after side by side).

Details are stored JSON; their shape is documented (docs/audit.md, docs/observability.md)
but an old or odd entry must still render, so everything here reads them defensively and
turns values into text. The templates escape that text; nothing here marks anything safe.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aigateway.audit.models import AuditEvent
from aigateway.routing.models import Deployment
from auth.models import Organisation, Team


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    organisation: str
    team: str
    status: str
    request_id: str


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _ms(value: Any) -> str:
    return f"{value:.3f} ms" if isinstance(value, int | float) else "—"


def audit_rows(events: Iterable[AuditEvent]) -> list[AuditRow]:
    """One row per event; organisation and team names in two queries per page at most."""
    events = list(events)
    org_ids = {e.organisation_id for e in events if e.organisation_id is not None}
    team_ids = {t for e in events if (t := _int(_dict(e.details).get("team_id"))) is not None}
    orgs = dict(Organisation.objects.filter(pk__in=org_ids).values_list("pk", "name"))
    teams = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "name"))
    rows = []
    for e in events:
        d = _dict(e.details)
        team_id = _int(d.get("team_id"))
        org = orgs.get(e.organisation_id, f"#{e.organisation_id}") if e.organisation_id else ""
        status = d.get("status")
        error = d.get("error_type")
        shown = "" if status is None else _text(status) + (f" {_text(error)}" if error else "")
        request_id = d.get("request_id") or (e.target_id if e.target_type == "api_call" else "")
        rows.append(
            AuditRow(
                event=e,
                organisation=org,
                team=teams.get(team_id, f"#{team_id}") if team_id is not None else "",
                status=shown,
                request_id=str(request_id),
            )
        )
    return rows


# -- one event ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChangeLine:
    name: str
    before: str
    after: str
    changed: bool


@dataclass
class TraceView:
    stages: list[dict[str, str]] = field(default_factory=list)
    limits: list[dict[str, str]] = field(default_factory=list)
    cache_status: str = "—"
    cache_similarity: str = "—"
    breakers: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    attempts: list[dict[str, str]] = field(default_factory=list)
    retries: list[dict[str, str]] = field(default_factory=list)
    failovers: list[dict[str, str]] = field(default_factory=list)
    served_by: dict[str, str] | None = None
    guardrails: list[dict[str, str]] = field(default_factory=list)  # matched rules, no values


@dataclass(frozen=True)
class EventView:
    event: AuditEvent
    row: AuditRow
    details_json: str
    changes: list[ChangeLine] | None
    trace: TraceView | None


def audit_event_view(event: AuditEvent) -> EventView:
    details = _dict(event.details)
    trace = details.get("trace")
    has_change = "before" in details or "after" in details
    return EventView(
        event=event,
        row=audit_rows([event])[0],
        details_json=json.dumps(event.details, indent=2, sort_keys=True, ensure_ascii=False),
        changes=_changes(details) if has_change else None,
        trace=_trace(trace) if isinstance(trace, dict) else None,
    )


def _changes(details: dict[str, Any]) -> list[ChangeLine]:
    before, after = _dict(details.get("before")), _dict(details.get("after"))
    names = sorted(set(before) | set(after))
    return [
        ChangeLine(
            name=n,
            before=_text(before[n]) if n in before else "—",
            after=_text(after[n]) if n in after else "—",
            changed=(n in before) != (n in after) or before.get(n) != after.get(n),
        )
        for n in names
    ]


def _deployment_ids(trace: dict[str, Any]) -> set[int]:
    rows = [*_dicts(trace.get("attempts")), *_dicts(trace.get("breakers"))]
    rows += [*_dicts(trace.get("skipped")), _dict(trace.get("served_by"))]
    ids = {_int(r.get("deployment_id")) for r in rows}
    for f in _dicts(trace.get("failovers")):
        ids |= {_int(f.get("from_deployment_id")), _int(f.get("to_deployment_id"))}
    return {i for i in ids if i is not None}


def _trace(trace: dict[str, Any]) -> TraceView:
    found = Deployment.objects.select_related("route", "provider").filter(
        pk__in=_deployment_ids(trace)
    )
    names = {d.pk: str(d) for d in found}

    def deployment(value: Any) -> str:
        pk = _int(value)
        if pk is None:
            return "—"
        return f"#{pk} {names[pk]}" if pk in names else f"#{pk} (no longer configured)"

    def attempt(a: dict[str, Any]) -> dict[str, str]:
        return {
            "deployment": deployment(a.get("deployment_id")),
            "provider": _text(a.get("provider")),
            "upstream_model": _text(a.get("upstream_model")),
            "credential": _text(a.get("credential_fingerprint")),
            "start": _ms(a.get("start_ms")),
            "duration": _ms(a.get("duration_ms")),
            "outcome": _text(a.get("outcome")),
        }

    cache = _dict(trace.get("cache"))
    similarity = cache.get("similarity")
    served = trace.get("served_by")
    return TraceView(
        stages=[
            {"name": _text(s.get("name")), "start": _ms(s.get("start_ms")),
             "duration": _ms(s.get("duration_ms"))}
            for s in _dicts(trace.get("stages"))
        ],
        limits=[
            {"scope": f"{_text(c.get('scope'))} #{_text(c.get('scope_id'))}",
             "kind": _text(c.get("kind")), "limit": _text(c.get("limit")),
             "remaining": _text(c.get("remaining")),
             "allowed": "allowed" if c.get("allowed") is True else "refused"}
            for c in _dicts(trace.get("limits"))
        ],
        cache_status=_text(cache.get("status")),
        cache_similarity=f"{similarity:.4f}" if isinstance(similarity, int | float) else "—",
        breakers=[
            {"deployment": deployment(b.get("deployment_id")), "decision": _text(b.get("decision"))}
            for b in _dicts(trace.get("breakers"))
        ],
        skipped=[
            {"deployment": deployment(s.get("deployment_id")), "reason": _text(s.get("reason"))}
            for s in _dicts(trace.get("skipped"))
        ],
        attempts=[attempt(a) for a in _dicts(trace.get("attempts"))],
        retries=[
            {"round": _text(r.get("round")), "reason": _text(r.get("reason")),
             "wait": _ms(r.get("wait_ms"))}
            for r in _dicts(trace.get("retries"))
        ],
        failovers=[
            {"from": deployment(f.get("from_deployment_id")),
             "to": deployment(f.get("to_deployment_id")), "reason": _text(f.get("reason"))}
            for f in _dicts(trace.get("failovers"))
        ],
        served_by=attempt(served) if isinstance(served, dict) else None,
        guardrails=[
            {"rule": _text(g.get("rule")), "action": _text(g.get("action")),
             "direction": _text(g.get("direction")), "count": _text(g.get("count"))}
            for g in _dicts(trace.get("guardrails"))
        ],
    )  # fmt: skip

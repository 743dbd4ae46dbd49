"""The audit log's CSV export (same filters and role scoping as the page, streamed in keyset
batches, no formula can run in a spreadsheet) and the page's cost on a large audit table
(index range scans, a fixed number of queries; bench/audit_page.py measures 1M rows)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aigateway.audit import search
from aigateway.audit.models import AuditChainHead, AuditEvent
from aigateway.audit.services import audit_record
from tests.web.dashboard_support import add_frank, client_for, streamed_csv

EXPORT = "/audit/export.csv"
pytestmark = pytest.mark.django_db


def _event(org, action="team.updated", **kwargs) -> AuditEvent:
    kwargs.setdefault("target_type", "team")
    kwargs.setdefault("actor_label", "cli")
    return audit_record(action=action, organisation_id=getattr(org, "pk", None), **kwargs)


@pytest.fixture
def events(cast):
    add_frank(cast)
    return {
        "acme": _event(cast.org, target_label="acme-change", target_id="1"),
        "globex": _event(cast.other_org, target_label="globex-change", target_id="2"),
        "gateway": _event(None, action="breaker.open", target_label="gateway-wide"),
    }


def _labels(response) -> set[str]:
    return {row[6] for row in streamed_csv(response)[1:]}


@pytest.mark.parametrize(
    ("role", "status", "labels"),
    [("anonymous", 302, None), ("alice", 200, {"acme-change"}), ("dave", 200, {"acme-change"}),
     ("bob", 403, None), ("carol", 403, None), ("frank", 200, {"globex-change"})],
)  # fmt: skip
def test_the_export_is_scoped_like_the_page(cast, events, role, status, labels):
    response = client_for(cast, role).get(EXPORT)
    assert response.status_code == status
    if labels is not None:
        assert _labels(response) == labels
    if status == 403:
        assert b"acme-change" not in response.content


def test_gateway_operators_export_every_event(cast, events):
    cast.root = get_user_model().objects.create_superuser("root", "root@example.test", "pw-r-x")
    labels = _labels(client_for(cast, "root").get(EXPORT))
    assert {"acme-change", "globex-change", "gateway-wide"} <= labels


def test_filters_apply_to_the_export_as_to_the_page(cast):
    details = {"request_id": "req_x1", "status": 200, "team_id": cast.team.pk}
    _event(cast.org, action="api.call", target_type="api_call", target_id="req_x1",
           actor_label="key agw-xyz", target_label="the-call", details=details)  # fmt: skip
    old = _event(cast.org, action="team.created", target_label="old-one")
    AuditEvent.objects.filter(pk=old.pk).update(created_at=datetime(2020, 5, 17, 12, tzinfo=UTC))
    _event(cast.org, target_label="recent-change")
    client = client_for(cast, "alice")
    cases = {
        "action=api.call": {"the-call"},
        "action=team.": {"old-one", "recent-change"},
        "actor=key+agw-xyz": {"the-call"},
        "request_id=req_x1": {"the-call"},
        "since=2020-05-17&until=2020-05-17": {"old-one"},
        "until=2020-05-16": set(),
    }
    for query, expected in cases.items():
        assert _labels(client.get(f"{EXPORT}?{query}")) == expected, query
    [header, row] = streamed_csv(client.get(f"{EXPORT}?request_id=req_x1"))
    record = dict(zip(header, row, strict=True))
    assert record["organisation"] == "Acme" and record["team"] == "Research"
    assert record["result"] == "200" and record["request_id"] == "req_x1"
    assert json.loads(record["details"])["team_id"] == cast.team.pk


@pytest.mark.parametrize("query", ["since=yesterday", "action=" + "x" * 101, "until=2026-13-01"])
def test_bad_filters_are_a_400_with_the_reason(cast, query):
    response = client_for(cast, "alice").get(f"{EXPORT}?{query}")
    assert response.status_code == 400
    assert "These filters cannot be applied" in response.content.decode()


def test_the_export_streams_in_keyset_batches_newest_first(cast, monkeypatch):
    monkeypatch.setattr(search, "EXPORT_BATCH", 3)
    made = [_event(cast.org, target_label=f"change-{i}") for i in range(8)]
    client = client_for(cast, "alice")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(EXPORT)
        rows = streamed_csv(response)
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    assert [int(r[0]) for r in rows[1:]] == sorted((e.sequence for e in made), reverse=True)
    batches = [q["sql"] for q in queries.captured_queries if 'FROM "audit_auditevent"' in q["sql"]]
    assert len(batches) == 3  # 3 + 3 + 2


def test_no_cell_can_run_as_a_formula(cast):
    for label in ("=1+1", "+SUM(A1)", "-2", "@cmd", "\tx", "plain"):
        _event(cast.org, actor_label=label, target_label=label)
    rows = streamed_csv(client_for(cast, "alice").get(EXPORT))
    assert sorted(r[2] for r in rows[1:]) == sorted(
        ["'=1+1", "'+SUM(A1)", "'-2", "'@cmd", "'\tx", "plain"]
    )
    assert all(r[0].isdigit() for r in rows[1:])  # numbers stay numbers


def test_the_page_links_the_export_with_its_filters(cast):
    _event(cast.org)
    html = client_for(cast, "dave").get("/audit/?action=team.").content.decode()
    assert 'href="/audit/export.csv?action=team."' in html


# -- a large table --------------------------------------------------------------------------
ROWS = 20_000


@pytest.fixture
def big_log(cast):
    """ROWS synthetic events (90 % acme), written around the hash chain like the bench."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    AuditEvent.objects.bulk_create(
        [AuditEvent(created_at=start + timedelta(minutes=i), actor_label=f"user{i % 40}",
                    action="api.call" if i % 50 else "team.updated", target_type="api_call",
                    target_id=f"req_{i:08d}",
                    organisation_id=cast.other_org.pk if i % 10 == 0 else cast.org.pk,
                    sequence=i + 1, previous_hash="0" * 64, record_hash="0" * 64)
         for i in range(ROWS)],
        batch_size=2000,
    )  # fmt: skip
    AuditChainHead.objects.update_or_create(pk=1, defaults={"sequence": ROWS,
                                                             "record_hash": "0" * 64})  # fmt: skip
    return cast


QUERIES = ["", "cursor=10000", "action=team.updated", "actor=user7", "request_id=req_00012345"]


def test_a_page_of_a_large_log_is_an_index_scan_and_a_fixed_number_of_queries(big_log):
    client = client_for(big_log, "alice")
    client.get("/audit/")  # warm up templates
    for query in QUERIES:
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(f"/audit/?{query}")
            elapsed = time.perf_counter() - started
        assert response.status_code == 200
        # session, user, roles (2, checked twice), the events, organisation and team names
        assert len(queries) <= 9, "\n".join(q["sql"][:120] for q in queries.captured_queries)
        assert elapsed < 2.0, query  # generous for CI; bench/audit_page.py has real numbers
        page_sql = next(q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"]
                        and 'FROM "audit_auditevent"' in q["sql"])  # fmt: skip
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                plan = " ".join(str(r) for r in cursor.execute("EXPLAIN QUERY PLAN " + page_sql))
            assert "USING INDEX audit_org_" in plan, (query, plan)
            assert "TEMP B-TREE" not in plan, (query, plan)  # no sort of the org's events

"""The write-behind buffers' executemany inserter (aigateway/core/bulk_insert.py): what it
writes reads back exactly as the ORM would have written it, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pytest
from django.db import IntegrityError, transaction

from aigateway.audit.models import AuditEvent
from aigateway.core.bulk_insert import BulkInserter
from aigateway.usage.models import UsageRecord

pytestmark = pytest.mark.django_db


def full_row(model, **values):
    """Every concrete column (the inserter applies no model defaults), ``values`` on top."""
    row = {f.attname: f.get_default() for f in model._meta.concrete_fields if f.attname != "id"}
    row.update(values)
    return row


def test_usage_rows_read_back_as_the_orm_writes_them():
    at = dt.datetime(2026, 11, 26, 7, 30, 1, 123456, tzinfo=dt.UTC)
    values = dict(created_at=at, source="api", status_code=200, team_id=7, stream=True,
                  cost_usd=Decimal("0.00459123"), latency_ms=431.25, ttft_ms=None,
                  route="gpt-ü")  # fmt: skip
    UsageRecord.objects.create(request_id="by-orm", **values)
    row = full_row(UsageRecord, request_id="by-inserter", **values)
    BulkInserter(UsageRecord, list(row)).insert([list(row.values())])
    by_orm = UsageRecord.objects.values().get(request_id="by-orm")
    by_inserter = UsageRecord.objects.values().get(request_id="by-inserter")
    for row in (by_orm, by_inserter):
        row.pop("id"), row.pop("request_id")
    assert by_inserter == by_orm
    assert by_inserter["created_at"] == at and by_inserter["cost_usd"] == Decimal("0.00459123")


def test_ignore_conflicts_keeps_the_first_row_of_a_request_id():
    at = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    columns = list(full_row(UsageRecord))
    inserter = BulkInserter(UsageRecord, columns, ignore_conflicts=True)

    def row(request_id: str, status: int) -> list[object]:
        return list(full_row(UsageRecord, request_id=request_id, created_at=at,
                             status_code=status).values())  # fmt: skip

    inserter.insert([row("same", 200), row("same", 500), row("other", 429)])
    inserter.insert([row("same", 502)])  # a retried flush
    assert dict(UsageRecord.objects.values_list("request_id", "status_code")) == {
        "same": 200,
        "other": 429,
    }


def test_without_ignore_conflicts_a_duplicate_fails_the_whole_batch():
    at = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    row = full_row(UsageRecord, request_id="dup", created_at=at, status_code=200)
    inserter = BulkInserter(UsageRecord, list(row))
    with pytest.raises(IntegrityError), transaction.atomic():
        inserter.insert([list(row.values()), list(row.values())])
    assert not UsageRecord.objects.exists()


def test_json_columns_take_serialised_text_and_read_back_as_values():
    details = {"route": "gpt-ü", "nested": {"list": [1, 2.5, None, True]}, "quote": 'a"b'}
    text = orjson.dumps(details).decode()
    row = full_row(AuditEvent, created_at=dt.datetime.now(dt.UTC), actor_label="key agw-x",
                   action="api.call", target_type="api_call", details=text,
                   sequence=1, previous_hash="0" * 64, record_hash="f" * 64)  # fmt: skip
    BulkInserter(AuditEvent, list(row)).insert([list(row.values())])
    assert AuditEvent.objects.get(sequence=1).details == details


def test_columns_it_cannot_adapt_are_refused_when_built():
    with pytest.raises(ValueError, match="no columns"):
        BulkInserter(UsageRecord, ("request_id", "no_such_column"))

    from django.contrib.auth.models import User  # a ManyToMany is not a column; a date is
    from django.db import models

    class Dated(models.Model):  # noqa: DJ008
        day = models.DateField()

        class Meta:
            app_label = "audit"
            managed = False

    with pytest.raises(TypeError, match="unsupported"):
        BulkInserter(Dated, ("day",))
    assert BulkInserter(User, ("username", "is_staff"))  # text and booleans are fine

"""The write-behind buffers' multi-row inserter (aigateway/core/bulk_insert.py): what it
writes reads back exactly as the ORM would have written it, on SQLite and PostgreSQL, in a
few statements per batch drawn from a small set of statement texts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from aigateway.audit.models import AuditEvent
from aigateway.core.bulk_insert import MAX_ROWS_PER_STATEMENT, BulkInserter
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


def usage_rows(count: int, start: int = 0) -> tuple[list[str], list[list[object]]]:
    at = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    columns = list(full_row(UsageRecord))
    values = dict(created_at=at, status_code=200)
    rows = [
        list(full_row(UsageRecord, request_id=f"r{n}", input_tokens=n, **values).values())
        for n in range(start, start + count)
    ]
    return columns, rows


def test_a_large_batch_goes_in_few_statements_and_every_row_lands():
    count = 2 * MAX_ROWS_PER_STATEMENT + 245  # two full statements, then 128+64+32+16+4+1
    columns, rows = usage_rows(count)
    statements = []

    def sent(execute, sql, params, many, context):
        statements.append((many, len(params)))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(sent):
        BulkInserter(UsageRecord, columns).insert(rows)
    if connection.vendor == "sqlite":  # multi-row statements: one driver step each
        width = len(columns)
        assert statements == [(False, n * width) for n in (256, 256, 128, 64, 32, 16, 4, 1)]
    else:  # one pipelined executemany
        assert statements == [(True, count)]
    assert UsageRecord.objects.count() == count
    stored = dict(UsageRecord.objects.values_list("request_id", "input_tokens"))
    assert stored == {f"r{i}": i for i in range(count)}  # each row's values, none shifted


def test_statement_texts_stay_few_whatever_the_batch_sizes():
    """The driver caches a compiled statement per text: one text per batch size would keep
    hundreds of large statements alive (RSS grew by 170 MiB in a minute of load)."""
    columns, _ = usage_rows(0)
    inserter = BulkInserter(UsageRecord, columns)
    written, texts = 0, set()

    def statement_text(execute, sql, params, many, context):
        texts.add(sql)  # the text as sent, before parameters
        return execute(sql, params, many, context)

    with connection.execute_wrapper(statement_text):
        for size in range(1, 301):
            _, rows = usage_rows(size, start=written)
            inserter.insert(rows)
            written += size
    assert len(texts) <= MAX_ROWS_PER_STATEMENT.bit_length()  # 1, 2, 4, ... 256 rows
    assert UsageRecord.objects.count() == written


def test_an_empty_batch_writes_nothing():
    columns, _ = usage_rows(0)
    with CaptureQueriesContext(connection) as queries:
        BulkInserter(UsageRecord, columns).insert([])
    assert not queries.captured_queries


def test_a_row_of_the_wrong_width_is_refused_before_anything_is_written():
    columns, rows = usage_rows(3)
    with pytest.raises(ValueError):
        BulkInserter(UsageRecord, columns).insert([rows[0], rows[1][:-1], rows[2]])
    assert not UsageRecord.objects.exists()

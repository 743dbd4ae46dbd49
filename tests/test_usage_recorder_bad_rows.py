"""A row the database refuses must not hold back the rows buffered with it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import UsageEntry, UsageRecorder

pytestmark = pytest.mark.django_db


def _entry(request_id: str, **fields: object) -> UsageEntry:
    return UsageEntry(request_id=request_id, created_at=timezone.now(), source="api",
                      status_code=200, **fields)  # type: ignore[arg-type]  # fmt: skip


def test_nul_characters_and_overlong_values_are_fitted_and_written() -> None:
    recorder = UsageRecorder()
    recorder.record(_entry("req_nul", route="demo\x00" + "x" * 500, error_type="e" * 100))

    assert recorder.flush() == 1

    row = UsageRecord.objects.get(request_id="req_nul")
    assert "\x00" not in row.route
    assert row.route.startswith("demo") and len(row.route) == 200
    assert len(row.error_type) == 64


def test_a_refused_row_is_dropped_and_the_others_are_written() -> None:
    recorder = UsageRecorder()
    recorder.record(_entry("req_ok_1"))
    recorder.record(_entry("req_bad", input_tokens=-5))  # violates the column's CHECK
    recorder.record(_entry("req_ok_2"))

    recorder.flush()

    # PostgreSQL refuses the row (it is dropped and counted); SQLite's INSERT OR IGNORE skips
    # it. Either way the good rows are written and nothing stays stuck in the buffer.
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {"req_ok_1", "req_ok_2"}
    assert recorder.pending() == 0

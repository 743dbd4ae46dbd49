"""With DEBUG on, a flushing thread must not keep its statements: Django logs every query
of a connection until a request starts on its thread, and the flush threads never see one."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import UsageEntry, UsageRecorder

pytestmark = pytest.mark.django_db


def test_a_flush_leaves_no_logged_statements_behind(settings) -> None:
    settings.DEBUG = True
    recorder = UsageRecorder()
    for i in range(600):
        recorder.record(UsageEntry(request_id=f"req_{i}", created_at=timezone.now(),
                                   source="api", status_code=200))  # fmt: skip

    assert recorder.flush() == 600

    assert UsageRecord.objects.count() == 600
    assert len(connection.queries_log) == 1  # only the count just above

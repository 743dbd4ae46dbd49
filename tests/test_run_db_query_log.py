"""With DEBUG on, Django logs every query of a connection until a request starts on its
thread. ``run_db``'s threads (lookups, the write-behind flushes) never see a request, so
``run_db`` clears their log as a request would: a flush thread kept every multi-row INSERT."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.db import connection

from aigateway.core.db import run_db

pytestmark = pytest.mark.django_db


def test_each_run_db_call_starts_with_an_empty_query_log(settings) -> None:
    settings.DEBUG = True
    seen: list[tuple[int, int]] = []  # (thread, queries logged when the call began)

    def three_queries() -> None:
        seen.append((threading.get_ident(), len(connection.queries_log)))
        with connection.cursor() as cursor:
            for _ in range(3):
                cursor.execute("SELECT 1")

    async def calls() -> None:
        for _ in range(6):
            await run_db(three_queries)

    asyncio.run(calls())

    threads = [thread for thread, _ in seen]
    assert len(set(threads)) < len(threads)  # a thread was reused: it had logged queries
    assert [logged for _, logged in seen] == [0] * 6

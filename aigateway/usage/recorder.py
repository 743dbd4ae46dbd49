"""Buffered usage recording: the request path appends, a background task writes in batches.

Buffering, retry while the database is down and the shutdown flush are in
aigateway/core/buffered.py (shared with the audit writer).
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction

from aigateway.core.buffered import BufferedWriter
from aigateway.core.bulk_insert import BulkInserter
from aigateway.core.rows import fit_text_row

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class UsageEntry:
    request_id: str
    created_at: datetime
    source: str
    status_code: int
    organisation_id: int | None = None
    team_id: int | None = None
    api_key_id: int | None = None
    key_prefix: str = ""
    user_id: int | None = None
    route: str = ""
    provider: str = ""
    deployment_id: int | None = None
    upstream_model: str = ""
    stream: bool = False
    error_type: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    cache_status: str = ""
    saved_tokens: int = 0
    saved_cost_usd: Decimal = Decimal(0)


_ENTRY_FIELDS = tuple(f.name for f in fields(UsageEntry))


@cache
def _usage_inserter() -> tuple[BulkInserter, Callable[[list[Any]], list[Any]]]:
    from aigateway.usage.models import UsageRecord  # models load after settings (conftest)

    # A retried flush may write a record twice: the unique request_id keeps one.
    inserter = BulkInserter(UsageRecord, _ENTRY_FIELDS, ignore_conflicts=True)
    return inserter, fit_text_row(UsageRecord, _ENTRY_FIELDS)


class UsageRecorder(BufferedWriter[UsageEntry]):
    name = "usage"

    def interval(self) -> float:
        return settings.AIGATEWAY_USAGE_FLUSH_SECONDS

    def batch_size(self) -> int:
        return settings.AIGATEWAY_USAGE_FLUSH_BATCH

    def write_batch(self, batch: list[UsageEntry]) -> None:
        inserter, fit = _usage_inserter()
        rows = [fit([getattr(e, name) for name in _ENTRY_FIELDS]) for e in batch]
        with transaction.atomic():  # a savepoint inside a caller's transaction
            inserter.insert(rows)

    def describe(self, item: UsageEntry) -> str:
        return f"usage record {item.request_id}"


usage_recorder = UsageRecorder()


atexit.register(usage_recorder.flush_at_exit)

"""API-call audit entries as plain rows: hashed into the chain and inserted in a few
statements (aigateway.core.bulk_insert), without a model instance per entry."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from aigateway.core.bulk_insert import BulkInserter

COLUMNS = (
    "created_at",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "details",
    "organisation_id",
    "sequence",
    "previous_hash",
    "record_hash",
)


@dataclass(slots=True)
class ChainedRow:
    """What ``chain.canonical_payload`` hashes, plus ``details_json``: the same details as
    the text the database stores (and parses back into ``details``)."""

    created_at: dt.datetime
    actor_label: str
    action: str
    target_type: str
    target_id: str
    target_label: str
    details: dict[str, Any]
    details_json: str
    organisation_id: int | None
    actor_id: int | None = None
    sequence: int = 0
    previous_hash: str = ""
    record_hash: str = ""

    def values(self) -> tuple[Any, ...]:
        return (
            self.created_at,
            self.actor_id,
            self.actor_label,
            self.action,
            self.target_type,
            self.target_id,
            self.target_label,
            self.details_json,
            self.organisation_id,
            self.sequence,
            self.previous_hash,
            self.record_hash,
        )


@cache
def row_inserter() -> BulkInserter:
    from aigateway.audit.models import AuditEvent  # models load after settings (conftest)

    return BulkInserter(AuditEvent, COLUMNS)

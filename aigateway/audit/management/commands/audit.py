"""`manage.py audit verify|export`: check the audit hash chain, or export the log."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
from collections.abc import Generator, Iterator
from typing import Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from aigateway.audit.chain import canonical_timestamp, verify_chain
from aigateway.audit.models import AuditChainHead, AuditEvent, AuditGap
from aigateway.audit.retention import latest_gaps_anchor

EXPORT_FIELDS = (
    "sequence",
    "created_at",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "details",
    "organisation_id",
    "previous_hash",
    "record_hash",
)


def _parse_since(value: str) -> dt.datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since: not an ISO date or datetime: {value!r}")
        parsed = dt.datetime.combine(day, dt.time.min)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, dt.UTC)
    return parsed


@contextlib.contextmanager
def _snapshot() -> Iterator[None]:
    """Read the head, the gaps and the events as of one moment: API-call entries keep
    arriving while verify runs, and a purge may run too. PostgreSQL: one REPEATABLE READ
    transaction (writers are not blocked). SQLite: one transaction (writers wait)."""
    if connection.in_atomic_block:  # already inside a transaction (tests): use it
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


class Command(BaseCommand):
    help = "Verify the audit log's hash chain, or export the log as JSON lines or CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("verify", help="Walk the chain; exit non-zero at the first problem.")
        export = sub.add_parser("export", help="Write the log to stdout in sequence order.")
        export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
        export.add_argument("--since", help="Only events created at or after this ISO time.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "verify":
            self._verify()
        else:
            self._export(options["format"], options.get("since"))

    def _verify(self) -> None:
        with _snapshot():
            head = AuditChainHead.objects.filter(pk=1).values_list("sequence", "record_hash")
            gaps = list(AuditGap.objects.all())
            events = cast(
                Generator[AuditEvent],
                AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000),
            )
            try:
                result = verify_chain(events, head.first(), gaps, latest_gaps_anchor())
            finally:
                events.close()  # release the cursor now, even when verification stopped early
        if not result.ok:
            raise CommandError(
                f"audit chain BROKEN after {result.count} valid records: {result.problem}"
            )
        purged = f" ({result.purged} purged by retention)" if result.purged else ""
        self.stdout.write(f"audit chain OK: {result.count} records{purged}")

    def _export(self, fmt: str, since: str | None) -> None:
        events = AuditEvent.objects.order_by("sequence")
        if since:
            events = events.filter(created_at__gte=_parse_since(since))
        rows = (
            {
                "sequence": e.sequence,
                "created_at": canonical_timestamp(e.created_at),
                "actor_id": e.actor_id,
                "actor_label": e.actor_label,
                "action": e.action,
                "target_type": e.target_type,
                "target_id": e.target_id,
                "target_label": e.target_label,
                "details": e.details,
                "organisation_id": e.organisation_id,
                "previous_hash": e.previous_hash,
                "record_hash": e.record_hash,
            }
            for e in events.iterator(chunk_size=2000)
        )
        if fmt == "jsonl":
            for row in rows:
                self.stdout.write(json.dumps(row, sort_keys=True, ensure_ascii=False))
            return
        writer = csv.DictWriter(self.stdout, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            row["details"] = json.dumps(row["details"], sort_keys=True, ensure_ascii=False)
            writer.writerow(row)

"""How fast the audit log page stays with a big audit table.

    .venv/bin/python -m bench.audit_page [--rows 1000000] [--repeat 5] [--explain]

Fills a database with ``--rows`` synthetic audit events (bulk_create, 20k per batch; kept
between runs, so only the first run pays for it) in two organisations (90 % / 10 %), a year
of history, mostly ``api.call`` entries with a few admin changes. Then renders the page as a
platform admin of the big organisation (and as a gateway operator) through Django's test
client, for the filters people use, and reports the median wall time per page and the
queries it ran. ``--explain`` prints each page query's plan.

Database: DATABASE_URL if set (PostgreSQL: use a throwaway database), else a SQLite file in
/tmp. Rows are written around the hash chain (the chain is not what is measured).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aigateway.settings")
os.environ.setdefault("AIGATEWAY_ALLOW_INSECURE_DEFAULTS", "true")
os.environ.setdefault("DATABASE_URL", "sqlite:////tmp/aigateway-audit-bench.sqlite3")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from aigateway.audit.models import AuditChainHead, AuditEvent  # noqa: E402
from auth.models import Organisation, OrgMembership, OrgRole  # noqa: E402

BATCH = 20_000
START = datetime(2025, 11, 1, tzinfo=UTC)
ADMIN_ACTIONS = ("team.updated", "api_key.created", "api_key.revoked", "team_member.added")


def populate(rows: int) -> tuple[Organisation, Organisation]:
    big, _ = Organisation.objects.get_or_create(slug="bench-big", defaults={"name": "Big"})
    small, _ = Organisation.objects.get_or_create(slug="bench-small", defaults={"name": "Small"})
    have = AuditEvent.objects.count()
    step = timedelta(days=365) / max(rows, 1)
    while have < rows:
        n = min(BATCH, rows - have)
        events = []
        for i in range(have, have + n):
            admin = i % 50 == 0
            events.append(
                AuditEvent(
                    created_at=START + step * i,
                    actor_label=f"user{i % 40}" if admin else f"key agw-{i % 300:08d}",
                    action=ADMIN_ACTIONS[i % 4] if admin else "api.call",
                    target_type="team" if admin else "api_call",
                    target_id=str(i % 90) if admin else f"req_{i:012d}",
                    details={"status": 200, "team_id": i % 7} if not admin else {},
                    organisation_id=small.pk if i % 10 == 0 else big.pk,
                    sequence=i + 1,
                    previous_hash="0" * 64,
                    record_hash="0" * 64,
                )
            )
        AuditEvent.objects.bulk_create(events, batch_size=2000)
        have += n
        print(f"  … {have:,} events", file=sys.stderr)
    # Sign-ins are audited: new events must continue after the synthetic ones.
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    AuditChainHead.objects.update_or_create(pk=1, defaults={"sequence": last or 0,
                                                             "record_hash": "0" * 64})  # fmt: skip
    if connection.vendor == "postgresql":  # what autovacuum does after a bulk load
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
    return big, small


def timed(client: Client, url: str, repeat: int) -> tuple[float, int, list[str]]:
    samples, queries = [], []
    for _ in range(repeat):
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            if response.streaming:
                b"".join(response.streaming_content)  # type: ignore[attr-defined]
            samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        queries = [q["sql"] for q in captured.captured_queries]
    return statistics.median(samples), len(queries), queries


def explain(sql: str) -> str:
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        return "\n".join("    " + " ".join(str(c) for c in row) for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    big, _ = populate(args.rows)
    print(f"{AuditEvent.objects.count():,} audit events ({connection.vendor}); "
          f"setup {time.perf_counter() - started:.1f} s")  # fmt: skip

    User = get_user_model()
    admin, _ = User.objects.get_or_create(username="bench-admin")
    OrgMembership.objects.get_or_create(user=admin, organisation=big,
                                        defaults={"role": OrgRole.PLATFORM_ADMIN})  # fmt: skip
    operator = {"is_superuser": True, "is_staff": True}
    root, _ = User.objects.get_or_create(username="bench-root", defaults=operator)
    middle = AuditEvent.objects.count() // 2
    day = (START + timedelta(days=40)).date().isoformat()
    cases = [
        ("platform admin, newest page", admin, "/audit/"),
        ("platform admin, page at the middle (cursor)", admin, f"/audit/?cursor={middle}"),
        ("platform admin, rare action (team.updated)", admin, "/audit/?action=team.updated"),
        ("platform admin, action prefix (api_key.)", admin, "/audit/?action=api_key."),
        ("platform admin, actor (user7)", admin, "/audit/?actor=user7"),
        ("platform admin, request id", admin, f"/audit/?request_id=req_{middle + 1:012d}"),
        ("platform admin, one day a year ago", admin, f"/audit/?since={day}&until={day}"),
        ("platform admin, htmx table fragment", admin, "/audit/rows/?action=api.call"),
        ("gateway operator, newest page", root, "/audit/"),
        ("CSV export, one day (~2.7k rows)", admin, f"/audit/export.csv?since={day}&until={day}"),
    ]
    print(f"\n{'page':52} {'median ms':>10} {'queries':>8}")
    for label, user, url in cases:
        client = Client()
        client.force_login(user)
        median, count, queries = timed(client, url, args.repeat)
        print(f"{label:52} {median:10.1f} {count:8d}")
        if args.explain:
            for sql in queries:
                if "audit_auditevent" in sql and "ORDER BY" in sql:
                    print(explain(sql))


if __name__ == "__main__":
    main()

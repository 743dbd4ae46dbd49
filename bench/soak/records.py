"""Records expected vs stored: every answered call has one usage record and one audit entry.

    DATABASE_URL=... python -m bench.soak.records [--verify-chain] ids.txt

``ids.txt`` holds "request_id status" lines, one per call the client got an answer to (the
gateway's ``x-request-id``). Run after the gateway has stopped, so its buffers have flushed.
Prints one JSON object: how many were expected, how many usage rows and ``api.call`` audit
entries match them one to one (same status for usage), the ids that are missing, recorded
twice or recorded with another status, and how many rows exist for ids nobody was answered.
With ``--verify-chain``, also what ``manage.py audit verify`` says of the audit hash chain.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

CHUNK = 5000  # ids per query


def check(expected: dict[str, int]) -> dict[str, Any]:
    from django.db.models import Count

    from aigateway.audit.models import AuditEvent
    from aigateway.usage.models import UsageRecord

    ids = list(expected)
    usage: dict[str, int] = {}
    audit: Counter[str] = Counter()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = UsageRecord.objects.filter(request_id__in=chunk)
        usage |= dict(rows.values_list("request_id", "status_code"))
        audit.update(
            dict(
                AuditEvent.objects.filter(action="api.call", target_id__in=chunk)
                .values_list("target_id")
                .annotate(n=Count("id"))
                .values_list("target_id", "n")
            )
        )
    # request_id is unique in UsageRecord: a repeat would have failed there, so only the audit
    # can hold a duplicate.
    missing_usage = [i for i in ids if i not in usage]
    wrong_status = [i for i in ids if i in usage and usage[i] != expected[i]]
    missing_audit = [i for i in ids if audit[i] == 0]
    audit_twice = [i for i in ids if audit[i] > 1]
    usage_total = UsageRecord.objects.count()
    audit_total = AuditEvent.objects.filter(action="api.call").count()
    return {
        "expected": len(ids),
        "expected_by_status": dict(Counter(str(s) for s in expected.values())),
        "usage_matched": len(ids) - len(missing_usage) - len(wrong_status),
        "audit_matched": len(ids) - len(missing_audit) - len(audit_twice),
        "usage_rows_total": usage_total,
        "audit_api_calls_total": audit_total,
        "usage_rows_for_unanswered_calls": usage_total - len(usage),
        "audit_entries_for_unanswered_calls": audit_total - sum(audit.values()),
        "missing_usage": missing_usage[:10],
        "wrong_status": wrong_status[:10],
        "missing_audit": missing_audit[:10],
        "audit_twice": audit_twice[:10],
    }


def read_ids(path: Path) -> dict[str, int]:
    expected: dict[str, int] = {}
    for line in path.read_text().splitlines():
        request_id, _, status = line.partition(" ")
        if request_id:
            expected[request_id] = int(status)
    return expected


def verify_chain() -> str:
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    try:
        call_command("audit", "verify", stdout=out)
    except CommandError as exc:  # the first problem in the chain
        return str(exc)
    return out.getvalue().strip()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    chain = "--verify-chain" in args
    paths = [a for a in args if a != "--verify-chain"]
    if len(paths) != 1:
        raise SystemExit("usage: python -m bench.soak.records [--verify-chain] IDS_FILE")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aigateway.settings")
    os.environ.setdefault("AIGATEWAY_ALLOW_INSECURE_DEFAULTS", "true")  # reads no secret
    import django

    django.setup()
    result = check(read_ids(Path(paths[0])))
    if chain:
        result["chain"] = verify_chain()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

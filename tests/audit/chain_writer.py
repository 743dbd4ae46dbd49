"""A separate writer process for the concurrency test: buffered API-call entries flushed in
small batches, interleaved with direct admin events, all on the shared audit chain.

    python -m tests.audit.chain_writer NAME ROUNDS

It prints "ready" once Django is set up and starts writing when it reads a line on stdin,
so two writers start together; at the end it prints how many events it wrote.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    name, rounds = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aigateway.settings")
    import django

    django.setup()
    from decimal import Decimal

    from django.utils import timezone

    from aigateway.audit.services import audit_record
    from aigateway.audit.writer import PendingCall, audit_writer
    from aigateway.usage.recorder import UsageEntry

    print("ready", flush=True)
    sys.stdin.readline()  # both writers start together
    written = 0
    for i in range(rounds):
        for j in range(5):
            entry = UsageEntry(
                request_id=f"req_{name}_{i}_{j}", created_at=timezone.now(), source="api",
                status_code=200, route="r", cost_usd=Decimal("0.001"),
            )  # fmt: skip
            audit_writer.record(PendingCall(entry, 1, 0, 0, "127.0.0.1", None))
        written += audit_writer.flush()  # AIGATEWAY_AUDIT_FLUSH_BATCH=2: three transactions
        audit_record(action=f"writer.{name}", target_type="t", target_id=i)
        written += 1
    print(written)


if __name__ == "__main__":
    main()

"""Several processes writing the audit log at once (buffered API-call batches and direct
admin events) still build one valid chain: the chain head is locked per transaction. On
PostgreSQL (DATABASE_URL) the writers really run in parallel; on SQLite they serialise on
the database's write lock."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

from aigateway.audit.models import AuditChainHead, AuditEvent
from tests.audit.support import audit_verify, database_url

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 30


def test_two_writer_processes_racing_keep_one_valid_chain(transactional_db) -> None:
    env = dict(os.environ, DATABASE_URL=database_url(), AIGATEWAY_ALLOW_INSECURE_DEFAULTS="true",
               AIGATEWAY_AUDIT_FLUSH_BATCH="2", DATABASE_CONN_MAX_AGE="0")  # fmt: skip
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.audit.chain_writer", name, str(ROUNDS)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for writer in writers:  # both have set Django up (slow: the SDK imports)
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready", writer.communicate()[1][-3000:]
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    outputs = [w.communicate(timeout=120) for w in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err[-3000:]
        assert int(out.strip()) == ROUNDS * 6

    total = 2 * ROUNDS * 6
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, total + 1))
    assert AuditChainHead.objects.get().sequence == total
    for name in ("a", "b"):
        assert AuditEvent.objects.filter(action=f"writer.{name}").count() == ROUNDS
        assert AuditEvent.objects.filter(target_id__startswith=f"req_{name}_").count() == ROUNDS * 5
    # The writers' transactions really interleaved (not one process after the other).
    rows = AuditEvent.objects.order_by("sequence").values_list("action", "target_id")
    writer = [action[-1] if action.startswith("writer.") else target[4] for action, target in rows]
    switches = sum(1 for x, y in itertools.pairwise(writer) if x != y)
    if connection.vendor == "postgresql":  # SQLite's lock lets one writer run ahead
        assert switches > 10, switches
    assert audit_verify() == f"audit chain OK: {total} records"

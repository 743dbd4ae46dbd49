"""The audit hash chain: audit_record extends it, `audit verify` finds edits and deletions,
`audit export` writes parseable JSON lines and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from aigateway.audit.chain import GENESIS_HASH, compute_hash
from aigateway.audit.models import AuditChainHead, AuditEvent
from aigateway.audit.services import audit_record

pytestmark = pytest.mark.django_db


def _record(n: int) -> list[AuditEvent]:
    return [
        audit_record(
            action="thing.changed",
            target_type="thing",
            target_id=i,
            target_label=f"thing {i} ✓",
            details={"n": i, "nested": {"b": [1, 2], "a": None}, "tuple": (1, "x")},
            organisation_id=i % 2 or None,
        )
        for i in range(1, n + 1)
    ]


def _verify() -> str:
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    return out.getvalue()


def test_records_are_chained_and_verify() -> None:
    events = _record(5)
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
    assert events[0].previous_hash == GENESIS_HASH
    for before, after in itertools.pairwise(events):
        assert after.previous_hash == before.record_hash
    # What was hashed is what was stored.
    for stored in AuditEvent.objects.all():
        assert compute_hash(stored) == stored.record_hash
    head = AuditChainHead.objects.get()
    assert (head.sequence, head.record_hash) == (5, events[-1].record_hash)
    assert _verify().strip() == "audit chain OK: 5 records"


def test_empty_log_verifies() -> None:
    assert _verify().strip() == "audit chain OK: 0 records"


def test_edited_details_are_detected() -> None:
    _record(4)
    AuditEvent.objects.filter(sequence=3).update(details={"n": 999})
    with pytest.raises(CommandError, match=r"sequence 3: record_hash mismatch"):
        _verify()


def test_edited_timestamp_is_detected() -> None:
    _record(3)
    AuditEvent.objects.filter(sequence=2).update(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(CommandError, match=r"sequence 2: record_hash mismatch"):
        _verify()


def test_deleted_middle_row_is_detected() -> None:
    _record(5)
    AuditEvent.objects.filter(sequence=3).delete()
    with pytest.raises(CommandError, match=r"sequence 3 missing"):
        _verify()


def test_deleted_middle_row_with_renumbering_is_detected() -> None:
    _record(5)
    AuditEvent.objects.filter(sequence=3).delete()
    for seq in (4, 5):
        AuditEvent.objects.filter(sequence=seq).update(sequence=seq - 1)
    AuditChainHead.objects.update(sequence=4)
    with pytest.raises(CommandError, match=r"sequence 3: previous_hash does not match"):
        _verify()


def test_deleted_first_row_is_detected() -> None:
    _record(3)
    AuditEvent.objects.filter(sequence=1).delete()
    with pytest.raises(CommandError, match=r"sequence 1 missing"):
        _verify()


def test_deleted_last_row_is_detected_by_the_head() -> None:
    _record(4)
    AuditEvent.objects.filter(sequence=4).delete()
    with pytest.raises(CommandError, match=r"chain head is at sequence 4 .* sequence 3"):
        _verify()


def test_export_jsonl_and_csv_parse() -> None:
    events = _record(3)
    out = io.StringIO()
    call_command("audit", "export", "--format", "jsonl", stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["sequence"] for r in rows] == [1, 2, 3]
    assert rows[0]["details"] == {"n": 1, "nested": {"b": [1, 2], "a": None}, "tuple": [1, "x"]}
    assert rows[2]["record_hash"] == events[2].record_hash

    out = io.StringIO()
    call_command("audit", "export", "--format", "csv", stdout=out)
    csv_rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["sequence"] for r in csv_rows] == ["1", "2", "3"]
    assert json.loads(csv_rows[1]["details"])["n"] == 2
    assert csv_rows[0]["target_label"] == "thing 1 ✓"


def test_export_since_filters() -> None:
    events = _record(3)
    AuditEvent.objects.filter(sequence=1).update(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    out = io.StringIO()
    call_command("audit", "export", "--since", "2021-01-01", stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["sequence"] for r in rows] == [2, 3]
    assert events[1].created_at.isoformat() == rows[0]["created_at"]
    with pytest.raises(CommandError, match="not an ISO"):
        call_command("audit", "export", "--since", "yesterday", stdout=io.StringIO())


def test_chain_continues_after_a_user_is_recorded(django_user_model) -> None:  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(username="auditor-x", password="x")
    event = audit_record(action="a.b", target_type="t", actor=user)
    assert event.actor_id == user.pk and event.actor_label == "auditor-x"
    assert _verify().strip() == "audit chain OK: 1 records"


@pytest.mark.django_db
def test_deleting_a_user_is_not_tampering(django_user_model):
    from io import StringIO

    from django.core.management import call_command

    from aigateway.audit.services import audit_record

    user = django_user_model.objects.create_user("leaver", "l@example.test", "pw-leaver-1")
    audit_record(action="limit.set", target_type="limit", target_id=1, actor=user)
    user.delete()  # actor becomes NULL; the username stays in actor_label
    out = StringIO()
    call_command("audit", "verify", stdout=out)
    assert "audit chain OK: 1 records" in out.getvalue()

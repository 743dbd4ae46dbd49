"""Retention per organisation: the beat task deletes expired events, `audit verify` still
passes, and a deletion anywhere else (or a forged gap hiding one) is still reported."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from aigateway.audit.models import AuditEvent, AuditGap
from aigateway.audit.retention import PURGE_ACTION, audit_retention_purge
from aigateway.audit.services import audit_record, chain_append
from aigateway.audit.tasks import audit_retention_purge_task
from auth.models import Organisation

pytestmark = pytest.mark.django_db


def _verify() -> str:
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    return out.getvalue().strip()


def _interleaved(cast, rounds: int = 4) -> None:
    """Events of a short-retention org, a long-retention org and no org, interleaved."""
    cast.org.audit_retention_days = 30
    cast.org.save()
    cast.other_org.audit_retention_days = 365
    cast.other_org.save()
    for i in range(rounds):
        audit_record(action="a.short", target_type="t", target_id=i, organisation_id=cast.org.pk)
        audit_record(action="a.short", target_type="t", target_id=i, organisation_id=cast.org.pk)
        audit_record(
            action="b.long", target_type="t", target_id=i, organisation_id=cast.other_org.pk
        )
        audit_record(action="c.none", target_type="t", target_id=i)


def test_each_organisation_keeps_its_own_period_and_verify_passes(cast) -> None:
    _interleaved(cast)
    assert _verify() == "audit chain OK: 16 records"
    # 100 days on: acme's 30 days are over, globex's 365 and the default 365 are not.
    result = audit_retention_purge(now=timezone.now() + timedelta(days=100))
    assert (result.deleted, result.batches) == (8, 1)
    assert not AuditEvent.objects.filter(action="a.short").exists()
    assert AuditEvent.objects.filter(action="b.long").count() == 4
    assert AuditEvent.objects.filter(action="c.none").count() == 4
    # Runs of two consecutive events each: one gap per run, the hashes kept.
    assert list(AuditGap.objects.values_list("first_sequence", "last_sequence")) == [
        (1, 2), (5, 6), (9, 10), (13, 14)
    ]  # fmt: skip
    purge = AuditEvent.objects.get(action=PURGE_ACTION)
    assert purge.details["deleted"] == 8 and purge.details["gaps"] == 4
    assert purge.organisation_id is None and purge.sequence == 17
    assert _verify() == "audit chain OK: 9 records (8 purged by retention)"


def test_deleting_an_event_that_retention_kept_is_still_detected(cast) -> None:
    _interleaved(cast)
    audit_retention_purge(now=timezone.now() + timedelta(days=100))
    AuditEvent.objects.filter(sequence=7).delete()  # a globex event in the middle
    with pytest.raises(CommandError, match=r"sequence 7 missing"):
        _verify()


def test_a_forged_gap_that_hides_a_deletion_is_detected(cast) -> None:
    _interleaved(cast)
    audit_retention_purge(now=timezone.now() + timedelta(days=100))
    victim = AuditEvent.objects.get(sequence=7)
    # Hide the deletion of sequence 7 behind a gap with the right hashes: the gap set no
    # longer matches the digest that the purge event recorded (and which its hash covers).
    AuditGap.objects.create(
        first_sequence=7, last_sequence=7,
        previous_hash=victim.previous_hash, last_hash=victim.record_hash,
    )  # fmt: skip
    victim.delete()
    with pytest.raises(CommandError, match=r"retention gaps do not match the digest"):
        _verify()


def test_a_widened_gap_is_detected(cast) -> None:
    _interleaved(cast)
    audit_retention_purge(now=timezone.now() + timedelta(days=100))
    after_gap = AuditEvent.objects.get(sequence=3)
    AuditGap.objects.filter(first_sequence=1).update(last_sequence=3,
                                                     last_hash=after_gap.record_hash)  # fmt: skip
    after_gap.delete()
    with pytest.raises(CommandError, match=r"retention gaps do not match the digest"):
        _verify()


def test_editing_the_purge_record_is_detected(cast) -> None:
    _interleaved(cast)
    audit_retention_purge(now=timezone.now() + timedelta(days=100))
    purge = AuditEvent.objects.get(action=PURGE_ACTION)
    AuditEvent.objects.filter(pk=purge.pk).update(details={**purge.details, "gaps_digest": "0"})
    with pytest.raises(CommandError, match=rf"sequence {purge.sequence}: record_hash mismatch"):
        _verify()


def test_a_purged_prefix_becomes_one_anchor_and_later_purges_extend_it(cast) -> None:
    for i in range(5):
        audit_record(action="old", target_type="t", target_id=i, organisation_id=cast.org.pk)
    first = audit_retention_purge(now=timezone.now() + timedelta(days=400))
    assert first.deleted == 5
    assert list(AuditGap.objects.values_list("first_sequence", "last_sequence")) == [(1, 5)]
    for i in range(3):
        audit_record(action="newer", target_type="t", target_id=i, organisation_id=cast.org.pk)
    # Later still: the newer events and the first purge record (no organisation: default
    # retention) expire; the prefix stays one gap.
    second = audit_retention_purge(now=timezone.now() + timedelta(days=800))
    assert second.deleted == 4
    assert list(AuditGap.objects.values_list("first_sequence", "last_sequence")) == [(1, 9)]
    assert list(AuditEvent.objects.values_list("action", flat=True)) == [PURGE_ACTION]
    assert _verify() == "audit chain OK: 1 records (9 purged by retention)"
    audit_record(action="after", target_type="t")
    assert _verify() == "audit chain OK: 2 records (9 purged by retention)"


def test_zero_keeps_forever_and_nothing_expired_writes_nothing(cast, settings) -> None:
    settings.AIGATEWAY_AUDIT_RETENTION_DAYS = 0
    cast.org.audit_retention_days = 0
    cast.org.save()
    audit_record(action="kept", target_type="t", organisation_id=cast.org.pk)
    audit_record(action="kept", target_type="t")
    result = audit_retention_purge(now=timezone.now() + timedelta(days=10_000))
    assert (result.deleted, result.batches) == (0, 0)
    assert AuditEvent.objects.count() == 2 and not AuditGap.objects.exists()
    assert _verify() == "audit chain OK: 2 records"


def test_events_of_a_deleted_organisation_follow_the_default(cast, settings) -> None:
    settings.AIGATEWAY_AUDIT_RETENTION_DAYS = 10
    audit_record(action="gone", target_type="t", organisation_id=cast.other_org.pk)
    cast.other_org.delete()
    assert audit_retention_purge(now=timezone.now() + timedelta(days=11)).deleted == 1
    assert _verify() == "audit chain OK: 1 records (1 purged by retention)"


def test_the_beat_task_runs_the_purge(cast) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["audit-retention"]["task"] == "audit.retention_purge"
    cast.org.audit_retention_days = 1
    cast.org.save()
    # Written with its own (earlier) time, as buffered API-call entries are.
    old = AuditEvent(
        action="old", target_type="t", actor_label="system", organisation_id=cast.org.pk,
        created_at=timezone.now() - timedelta(days=2),
    )  # fmt: skip
    chain_append([old])
    audit_record(action="fresh", target_type="t", organisation_id=cast.org.pk)
    assert audit_retention_purge_task.delay().get() == {"deleted": 1, "batches": 1}
    assert list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True)) == [
        "fresh", PURGE_ACTION
    ]  # fmt: skip
    assert _verify() == "audit chain OK: 2 records (1 purged by retention)"


def test_the_retention_period_is_set_by_config_as_code(tmp_path) -> None:
    from tests.config_as_code.support import apply, gateway

    text = "version: 1\norganisations:\n  - slug: initech\n    name: Initech\n"
    apply(tmp_path, text)
    org = Organisation.objects.get(slug="initech")
    assert org.audit_retention_days == 365  # the default when the file says nothing
    apply(tmp_path, text + "    audit_retention_days: 0\n")
    org.refresh_from_db()
    assert org.audit_retention_days == 0
    change = AuditEvent.objects.get(action="organisation.updated")
    assert change.details["changed"] == ["audit_retention_days"]
    assert "audit_retention_days: 0" in gateway("export")[0]
    with pytest.raises(CommandError, match="audit_retention_days"):
        apply(tmp_path, text + "    audit_retention_days: -1\n")

"""Who did what to which object, when. Append-only and tamper-evident: every event carries a
sequence number, the previous event's hash and its own hash (see ``aigateway.audit.chain``
and docs/audit.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    # Set in Python (not auto_now_add) so the stored value is exactly the one that was hashed.
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=200, help_text="Username, 'system' or 'cli'.")
    action = models.CharField(max_length=100, db_index=True)  # e.g. credential.rotated
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=100, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Indexed by the composite indexes below (it leads each of them).
    organisation_id = models.BigIntegerField(null=True, blank=True)
    # The hash chain: written only by aigateway.audit.services.audit_record.
    sequence = models.BigIntegerField(unique=True, editable=False)
    previous_hash = models.CharField(max_length=64, editable=False)
    record_hash = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        # "Find the audit entry of request X" (audit page, management API) stays an index
        # lookup at millions of rows.
        indexes = [
            models.Index(fields=["target_id"], name="audit_target_id_idx"),
            # The audit page and its CSV export: an organisation's events newest first, keyset
            # on sequence, optionally one action or one actor. Each is a backward range scan
            # of one of these, never a sort of the organisation's events (bench/audit_page.py:
            # without them SQLite sorted every event of the organisation for each page).
            models.Index(fields=["organisation_id", "sequence"], name="audit_org_seq_idx"),
            models.Index(
                fields=["organisation_id", "action", "sequence"], name="audit_org_action_seq_idx"
            ),
            models.Index(
                fields=["organisation_id", "actor_label", "sequence"],
                name="audit_org_actor_seq_idx",
            ),
            models.Index(
                fields=["organisation_id", "target_id", "sequence"], name="audit_org_target_seq_idx"
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M:%S}"
        return f"{when} {self.actor_label} {self.action} {self.target_label}"


class AuditChainHead(models.Model):
    """A single row (pk=1): the latest sequence and hash. Writers lock it, which serialises
    them, and it lets ``audit verify`` notice that the newest events were deleted."""

    sequence = models.BigIntegerField(default=0)
    record_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit chain head #{self.sequence} {self.record_hash[:12]}"


class AuditGap(models.Model):
    """A run of consecutive events removed by the retention purge (``audit.retention``).

    ``audit verify`` steps over it: the event before the run must hash to ``previous_hash``
    and the event after it must link to ``last_hash``. The set of gaps is itself anchored:
    the newest ``audit.retention_purge`` event records a digest of every gap row, so adding
    or widening a gap to hide a deletion is reported (docs/audit.md)."""

    first_sequence = models.BigIntegerField(unique=True)
    last_sequence = models.BigIntegerField(unique=True)
    previous_hash = models.CharField(max_length=64)  # record_hash of first_sequence - 1
    last_hash = models.CharField(max_length=64)  # record_hash of last_sequence

    class Meta:
        ordering = ["first_sequence"]

    def __str__(self) -> str:
        return f"purged audit events {self.first_sequence}-{self.last_sequence}"

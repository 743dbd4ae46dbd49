"""Files, batches and the per-request items of a batch.

Content lives in the database: web and worker processes (different containers) both read it,
and an output file is written in the same transaction as the batch's final status, so a
crash never leaves a finished batch without its file or a file without its batch.
"""

from __future__ import annotations

import secrets

from django.db import models


def _file_id() -> str:
    return "file-" + secrets.token_hex(12)


def _batch_id() -> str:
    return "batch_" + secrets.token_hex(12)


class FilePurpose(models.TextChoices):
    BATCH = "batch", "Batch input"
    BATCH_OUTPUT = "batch_output", "Batch output"


class BatchFile(models.Model):
    """A file in OpenAI's sense: uploaded input (purpose "batch") or a batch's output."""

    public_id = models.CharField(max_length=40, unique=True, default=_file_id)
    team = models.ForeignKey("identity.Team", on_delete=models.CASCADE, related_name="files")
    purpose = models.CharField(max_length=16, choices=FilePurpose.choices)
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    content = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["team", "purpose"])]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.filename})"


class BatchStatus(models.TextChoices):
    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


# A run may still have work to do in these; the others are final.
ACTIVE_STATUSES = (
    BatchStatus.VALIDATING,
    BatchStatus.IN_PROGRESS,
    BatchStatus.FINALIZING,
    BatchStatus.CANCELLING,
)


class Batch(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=_batch_id)
    team = models.ForeignKey("identity.Team", on_delete=models.CASCADE, related_name="batches")
    # The key that created the batch: its items run as that key (its routes and limits).
    api_key = models.ForeignKey(
        "identity.ApiKey", null=True, on_delete=models.SET_NULL, related_name="batches"
    )
    endpoint = models.CharField(max_length=64)
    completion_window = models.CharField(max_length=8, default="24h")
    # Public file ids, not foreign keys: the batch keeps its shape when a file is deleted.
    input_file_id = models.CharField(max_length=40)
    output_file_id = models.CharField(max_length=40, blank=True)
    error_file_id = models.CharField(max_length=40, blank=True)
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.VALIDATING
    )
    model = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    errors = models.JSONField(null=True, blank=True)  # [{code, message, param, line}]
    total = models.PositiveIntegerField(default=0)
    # Final counts and usage, written when the batch ends (live counts come from the items).
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    usage = models.JSONField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    in_progress_at = models.DateTimeField(null=True, blank=True)
    finalizing_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    cancelling_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    # Execution: one run holds the lease at a time and renews it while it works; a lease
    # that ran out means the run died (a killed worker) and the sweep starts another.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # Every remaining item waits for the team's quota until then: the sweep resumes it.
    resume_after = models.DateTimeField(null=True, blank=True)
    # How often a request waited because the team's quota had no room (an operator's hint
    # that the quota, not the upstream, paced this batch).
    quota_waits = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["status", "lease_until"])]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.status})"


class ItemStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the request answered 2xx
    FAILED = "failed"  # it answered an error (the error file has it)


OPEN_ITEM_STATUSES = (ItemStatus.PENDING, ItemStatus.RUNNING)


class BatchItem(models.Model):
    """One request line of a batch. Its result is written once, by a conditional update."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    line = models.PositiveIntegerField()  # 1-based line of the input file
    custom_id = models.CharField(max_length=512)
    body = models.JSONField()
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    result = models.JSONField(null=True, blank=True)  # the output line, OpenAI's shape
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)  # times a run started it
    run_token = models.CharField(max_length=32, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "custom_id"], name="batch_custom_id_unique"),
            models.UniqueConstraint(fields=["batch", "line"], name="batch_line_unique"),
        ]
        indexes = [models.Index(fields=["batch", "status"])]

    def __str__(self) -> str:
        return f"{self.custom_id} ({self.status})"

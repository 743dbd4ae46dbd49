"""One row per gateway call, whichever door it came in by. Written in batches."""

from __future__ import annotations

from django.db import models


class UsageRecord(models.Model):  # noqa: DJ008 - rows are data, never listed by name
    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=16, default="api")  # api, playground, batch
    organisation_id = models.BigIntegerField(null=True, db_index=True)
    team_id = models.BigIntegerField(null=True, db_index=True)
    api_key_id = models.BigIntegerField(null=True)
    key_prefix = models.CharField(max_length=16, blank=True)
    user_id = models.BigIntegerField(null=True)
    route = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    deployment_id = models.BigIntegerField(null=True)
    upstream_model = models.CharField(max_length=200, blank=True)
    stream = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=64, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True)
    cache_status = models.CharField(max_length=16, blank=True)  # HIT, SEMANTIC-HIT, MISS, ""
    # What a cache hit saved: the tokens and cost of the answer it replayed.
    saved_tokens = models.PositiveIntegerField(default=0)
    saved_cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)

    class Meta:
        indexes = [models.Index(fields=["team_id", "created_at"])]

"""Limits per scope (organisation, team, API key, user, upstream deployment) and the alerts
raised when usage crosses a limit's soft threshold."""

from __future__ import annotations

from django.db import models


class Scope(models.TextChoices):
    ORGANISATION = "org", "Organisation"
    TEAM = "team", "Team"
    KEY = "key", "API key"
    USER = "user", "User"
    DEPLOYMENT = "deployment", "Upstream deployment"


class LimitKind(models.TextChoices):
    REQUESTS_PER_MINUTE = "rpm", "Requests per minute"
    TOKENS_PER_MINUTE = "tpm", "Tokens per minute"
    CONCURRENT = "concurrent", "Concurrent requests"
    TOKENS_PER_DAY = "tokens_day", "Tokens per day"
    TOKENS_PER_MONTH = "tokens_month", "Tokens per month"
    COST_PER_DAY = "cost_day", "Cost per day (USD)"
    COST_PER_MONTH = "cost_month", "Cost per month (USD)"


class Limit(models.Model):
    scope = models.CharField(max_length=16, choices=Scope.choices)
    scope_id = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=LimitKind.choices)
    value = models.DecimalField(max_digits=16, decimal_places=6)
    burst = models.DecimalField(
        max_digits=16,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Token-bucket capacity for per-minute limits; empty means the limit itself.",
    )
    soft_threshold_percent = models.PositiveSmallIntegerField(
        default=80, help_text="Raise an alert when usage crosses this share of the limit."
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_id", "kind"], name="one_limit_per_kind")
        ]
        indexes = [models.Index(fields=["scope", "scope_id"])]

    def __str__(self) -> str:
        return f"{self.scope}:{self.scope_id} {self.kind} ≤ {self.value}"


class QuotaAlert(models.Model):
    """A limit's soft threshold was crossed (once per limit and period)."""

    limit = models.ForeignKey(Limit, on_delete=models.CASCADE, related_name="alerts")
    period = models.CharField(max_length=32)  # e.g. 2026-11-25, 2026-11, or a minute stamp
    used = models.DecimalField(max_digits=20, decimal_places=6)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["limit", "period"], name="one_alert_per_period")
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.limit} crossed {self.limit.soft_threshold_percent}% in {self.period}"

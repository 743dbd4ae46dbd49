"""Routes (the model names clients ask for) and the deployments that serve them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RouteStrategy(models.TextChoices):
    ORDERED = "ordered", "Ordered failover"
    WEIGHTED = "weighted", "Weighted load balancing"
    LOWEST_LATENCY = "lowest_latency", "Lowest latency"


class CacheMode(models.TextChoices):
    OFF = "off", "Off"
    DETERMINISTIC = "deterministic", "Deterministic requests only (temperature 0, no tools)"
    ALWAYS = "always", "Always (the route opts in)"


class CacheScope(models.TextChoices):
    KEY = "key", "Per API key"
    TEAM = "team", "Per team"
    ORGANISATION = "org", "Per organisation"


class Route(models.Model):
    name = models.CharField(
        max_length=200, unique=True, help_text="The model name clients send, e.g. gpt-4o or smart."
    )
    description = models.CharField(max_length=500, blank=True)
    strategy = models.CharField(
        max_length=32, choices=RouteStrategy.choices, default=RouteStrategy.ORDERED
    )
    # Retries: a round tries each available deployment once in strategy order; when all
    # fail, wait (the upstream's retry-after, else exponential backoff with full jitter)
    # and start another round, at most ``max_retries`` times, never past the deadline.
    max_retries = models.PositiveSmallIntegerField(default=3)
    backoff_base_seconds = models.FloatField(default=1.0)
    backoff_cap_seconds = models.FloatField(default=60.0)
    timeout_seconds = models.FloatField(
        default=600.0, help_text="Per-request deadline, retries and failovers included."
    )
    # Why a call may move to the next deployment. Errors caused by the caller's own input
    # (400) never fail over.
    fallback_on_errors = models.BooleanField(default=True, help_text="5xx, timeouts, resets.")
    fallback_on_rate_limit = models.BooleanField(default=True)
    fallback_on_context_window = models.BooleanField(
        default=True, help_text="To a deployment with a larger context window."
    )
    fallback_on_content_filter = models.BooleanField(default=False)
    # Response cache. The scope is always part of the cache key: one team never gets
    # another's answer.
    cache_mode = models.CharField(
        max_length=16, choices=CacheMode.choices, default=CacheMode.DETERMINISTIC
    )
    cache_scope = models.CharField(
        max_length=8, choices=CacheScope.choices, default=CacheScope.TEAM
    )
    cache_ttl_seconds = models.PositiveIntegerField(default=3600)
    semantic_cache = models.BooleanField(default=False)
    # 0.97 with the word-level guard: precision 0.95 on bench/semantic_pairs.jsonl
    # (docs/semantic-threshold.md); a wrong cached answer is worse than a miss.
    semantic_threshold = models.FloatField(default=0.97)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Deployment(models.Model):
    """One way to serve a route: a provider, its upstream model name and (optionally) a
    pinned credential. Lower priority numbers are tried first."""

    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(
        "providers.Provider", on_delete=models.PROTECT, related_name="deployments"
    )
    upstream_model = models.CharField(max_length=200)
    credential = models.ForeignKey(
        "providers.Credential", null=True, blank=True, on_delete=models.SET_NULL
    )
    priority = models.PositiveIntegerField(default=0)
    weight = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=True)
    max_context_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Context window; used for context-overflow fallback."
    )
    # Latest health probe (Celery beat), for the dashboard's health panel.
    last_probe_at = models.DateTimeField(null=True, blank=True)
    last_probe_ok = models.BooleanField(null=True)
    last_probe_latency_ms = models.FloatField(null=True, blank=True)
    last_probe_error = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["route", "priority", "id"]

    def __str__(self) -> str:
        return f"{self.route.name} → {self.provider.name}:{self.upstream_model}"


class BreakerEvent(models.Model):
    """Every circuit-breaker transition, automatic or manual, with its reason."""

    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="breaker_events"
    )
    created_at = models.DateTimeField(db_index=True)
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    reason = models.CharField(max_length=300)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.deployment_id}: {self.from_state} → {self.to_state} ({self.reason})"

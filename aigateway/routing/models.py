"""Routes (the model names clients ask for) and the deployments that serve them."""

from __future__ import annotations

from django.db import models


class RouteStrategy(models.TextChoices):
    ORDERED = "ordered", "Ordered failover"


class Route(models.Model):
    name = models.CharField(
        max_length=200, unique=True, help_text="The model name clients send, e.g. gpt-4o or smart."
    )
    description = models.CharField(max_length=500, blank=True)
    strategy = models.CharField(
        max_length=32, choices=RouteStrategy.choices, default=RouteStrategy.ORDERED
    )
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

    class Meta:
        ordering = ["route", "priority", "id"]

    def __str__(self) -> str:
        return f"{self.route.name} → {self.provider.name}:{self.upstream_model}"

"""Guardrail policies: one per organisation, per team, and per route within an organisation.

A call is held to the policies of its organisation, its team and its route together
(aigateway/guardrails/policy.py merges them: the strictest action and the lowest limit win).
Routes serve every organisation, so a route policy belongs to one organisation and applies
to that organisation's calls on the route only.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Scope(models.TextChoices):
    ORGANISATION = "org", "Organisation"
    TEAM = "team", "Team"
    ROUTE = "route", "Route"


class Action(models.TextChoices):
    BLOCK = "block", "Block"
    REDACT = "redact", "Redact"
    FLAG = "flag", "Flag"


class Direction(models.TextChoices):
    INPUT = "input", "Input"
    OUTPUT = "output", "Output"
    BOTH = "both", "Both"


class GuardrailPolicy(models.Model):
    organisation = models.ForeignKey(
        "identity.Organisation", on_delete=models.CASCADE, related_name="guardrail_policies"
    )
    scope = models.CharField(max_length=8, choices=Scope.choices)
    team = models.ForeignKey(
        "identity.Team",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="guardrail_policies",
    )
    route = models.ForeignKey(
        "routing.Route",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="guardrail_policies",
    )
    enabled = models.BooleanField(default=True)
    reversible = models.BooleanField(
        default=False,
        help_text="Put redacted values back into the answer the requester receives (never "
        "into anything stored).",
    )
    max_prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    max_messages = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # OpenAI parameter names the callers may use; None: any (model, messages, stream and the
    # output-token limit are always allowed).
    allowed_params = models.JSONField(null=True, blank=True)
    # [{"detect": …, "action": …, "direction": …, ("pattern" | "words"), …}], normalized by
    # aigateway/guardrails/rules.py (rules_parse).
    rules = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation"],
                condition=Q(scope="org"),
                name="one_guardrail_policy_per_org",
            ),
            models.UniqueConstraint(
                fields=["team"], condition=Q(scope="team"), name="one_guardrail_policy_per_team"
            ),
            models.UniqueConstraint(
                fields=["organisation", "route"],
                condition=Q(scope="route"),
                name="one_guardrail_policy_per_org_route",
            ),
            models.CheckConstraint(
                condition=Q(scope="org", team__isnull=True, route__isnull=True)
                | Q(scope="team", team__isnull=False, route__isnull=True)
                | Q(scope="route", team__isnull=True, route__isnull=False),
                name="guardrail_policy_scope_matches_target",
            ),
        ]

    def __str__(self) -> str:
        return f"guardrails of {self.target_label}"

    @property
    def target_label(self) -> str:
        """``organisation acme`` · ``team acme/research`` · ``route gpt-4o in acme``."""
        if self.scope == Scope.TEAM and self.team is not None:
            return f"team {self.team}"
        if self.scope == Scope.ROUTE and self.route is not None:
            return f"route {self.route.name} in {self.organisation.slug}"
        return f"organisation {self.organisation.slug}"

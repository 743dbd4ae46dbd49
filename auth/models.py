"""Tenancy: organisation → teams → memberships (user, role) and team API keys."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


class Organisation(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    # Daily and monthly budgets roll over at midnight in this time zone.
    time_zone = models.CharField(max_length=64, default="UTC")
    # Audit events of this organisation older than this are purged (Celery beat); 0 keeps
    # them forever. See aigateway/audit/retention.py.
    audit_retention_days = models.PositiveIntegerField(
        default=365, help_text="Delete audit events older than this many days (0: keep forever)."
    )
    # Off: people of this organisation sign in through its IdP only; break-glass accounts
    # (password + TOTP, docs/sso.md) still may use the password form.
    local_login_enabled = models.BooleanField(
        default=True,
        help_text="Allow password sign-in for this organisation's users (break-glass "
        "accounts with a TOTP factor always may).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="teams")
    slug = models.SlugField()
    name = models.CharField(max_length=200)
    # The routes (model names) this team may call. API keys can narrow this further.
    allowed_routes = models.ManyToManyField("routing.Route", blank=True, related_name="teams")
    # Off by default: request log lines carry no prompt or completion. On: both are logged,
    # with e-mails, card numbers, keys and AIGATEWAY_REDACT_PATTERNS masked.
    log_prompts = models.BooleanField(
        default=False,
        help_text="Write prompts and completions (redacted) into this team's request logs.",
    )
    # Off by default: a playground run is its author's alone. On: the team's admins see the
    # metadata of members' runs (route, tokens, cost, time), never the prompt or the answer.
    playground_history_visible_to_admins = models.BooleanField(
        default=False,
        help_text="Team admins see the metadata (never prompts or answers) of members' "
        "playground runs.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "slug"], name="team_slug_unique_in_org")
        ]

    def __str__(self) -> str:
        return f"{self.organisation.slug}/{self.slug}"


class OrgRole(models.TextChoices):
    PLATFORM_ADMIN = "platform_admin", "Platform admin"
    AUDITOR = "auditor", "Auditor"
    MEMBER = "member", "Member"


class TeamRole(models.TextChoices):
    TEAM_ADMIN = "team_admin", "Team admin"
    MEMBER = "member", "Member"


class OrgMembership(models.Model):
    """A user's organisation-wide role: platform admins manage everything in the
    organisation, auditors read everything and change nothing."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="org_memberships"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=32, choices=OrgRole.choices, default=OrgRole.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="one_org_role_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.get_role_display()} of {self.organisation}"


class TeamMembership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=TeamRole.choices, default=TeamRole.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="one_team_role_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.get_role_display()} of {self.team}"


class ApiKey(models.Model):
    """A team's virtual key. Only a SHA-256 hash and a short display prefix are stored."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    # Empty means "every route the team may use"; otherwise the key is narrowed to these.
    allowed_routes = models.ManyToManyField("routing.Route", blank=True, related_name="api_keys")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set by platform admins only (Django admin): the key may ask for each call's decision
    # trace, which names deployments, credential fingerprints and remaining budgets.
    debug_trace = models.BooleanField(
        default=False,
        help_text="Calls with this key may ask for their decision trace (X-AIGateway-Debug).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="api_key_name_unique_in_team")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


class AdminToken(models.Model):
    """A personal token for the management API (``Authorization: Bearer agw-pat-…``). It acts
    as its user, with the user's roles; only a SHA-256 hash and a display prefix are stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="admin_tokens"
    )
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now

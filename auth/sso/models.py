"""SSO data: one SAML identity provider per organisation, its mapping rules (IdP group →
role and team), and the TOTP factor of break-glass accounts."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from auth.models import Organisation, Team


class IdentityProvider(models.Model):
    """A SAML IdP of one organisation. The allauth ``SocialApp`` row (provider "saml",
    client_id = organisation slug, provider_id = entity id) is derived from it by
    ``auth.sso.services`` on every save; this model is the source of truth."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, related_name="identity_provider"
    )
    social_app = models.OneToOneField(
        "socialaccount.SocialApp", on_delete=models.PROTECT, related_name="gateway_idp"
    )
    name = models.CharField(max_length=200, help_text="Shown on the sign-in button.")
    # provider_id of every SocialAccount this IdP creates: the same uid from two IdPs must
    # never land on one account, so two organisations cannot share an entity id.
    entity_id = models.CharField(max_length=1024, unique=True)
    sso_url = models.URLField(max_length=1024)
    slo_url = models.URLField(max_length=1024, blank=True)
    x509cert = models.TextField()
    metadata_url = models.URLField(max_length=1024, blank=True)
    metadata_xml = models.TextField(blank=True)
    groups_attribute = models.CharField(max_length=512, default="groups")
    uid_attribute = models.CharField(
        max_length=512, blank=True, help_text="Empty: the NameID (must then be persistent)."
    )
    email_attribute = models.CharField(max_length=512, default="email", blank=True)
    name_attribute = models.CharField(max_length=512, blank=True)
    allow_idp_initiated = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation__slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.organisation.slug})"


class MappedRole(models.TextChoices):
    PLATFORM_ADMIN = "platform_admin", "Platform admin"
    AUDITOR = "auditor", "Auditor"
    TEAM_ADMIN = "team_admin", "Team admin"
    MEMBER = "member", "Member"


class MappingRule(models.Model):
    """A value of the IdP's groups attribute → a role (and a team for team roles)."""

    idp = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="rules")
    value = models.CharField(max_length=512)
    role = models.CharField(max_length=32, choices=MappedRole.choices)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["value", "role", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["idp", "value", "role", "team"], name="sso_rule_unique"
            ),
        ]

    def __str__(self) -> str:
        where = f" of {self.team.slug}" if self.team is not None else ""
        return f"{self.value} → {self.get_role_display()}{where}"


class TotpDevice(models.Model):
    """A break-glass account's second factor (RFC 6238). The secret is encrypted at rest;
    ``last_step`` refuses a code's time step once used (no replay within its window)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device"
    )
    secret_ciphertext = models.TextField()
    last_step = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"TOTP of {self.user}"

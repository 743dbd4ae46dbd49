"""What the gateway knows about upstream services: providers and their credentials."""

from __future__ import annotations

import os

from django.db import models

from providers.crypto import decrypt_secret


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"
    DEMO = "demo", "Demo (local, offline)"


class Provider(models.Model):
    """One upstream endpoint (an account at OpenAI, a vLLM server, the demo provider…)."""

    name = models.SlugField(unique=True)
    kind = models.CharField(max_length=32, choices=ProviderKind.choices)
    base_url = models.URLField(blank=True, help_text="Empty means the provider's default.")
    enabled = models.BooleanField(default=True)
    # Kind-specific settings, e.g. Azure: api_version, auth ("api_key" | "entra_id"),
    # tenant_id, client_id, authority_url. Never secrets: those are Credentials.
    options = models.JSONField(default=dict, blank=True)
    rotation_days = models.PositiveIntegerField(
        default=90, help_text="A credential is due for rotation this many days after creation."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def active_credential(self) -> Credential | None:
        """The credential new traffic uses: the newest active one."""
        return (
            self.credentials.filter(status=CredentialStatus.ACTIVE)
            .order_by("-activated_at", "-created_at")
            .first()
        )


class CredentialStatus(models.TextChoices):
    PENDING = "pending", "Pending verification"
    ACTIVE = "active", "Active"
    RETIRING = "retiring", "Retiring (grace period)"
    RETIRED = "retired", "Retired"


class Credential(models.Model):
    """A provider secret. Either encrypted at rest or a reference to an environment variable."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="credentials")
    name = models.CharField(max_length=200)
    ciphertext = models.TextField(blank=True)
    env_var = models.CharField(max_length=200, blank=True, help_text="Read from this variable.")
    fingerprint = models.CharField(max_length=12, blank=True)
    masked = models.CharField(max_length=32, blank=True)
    status = models.CharField(
        max_length=16, choices=CredentialStatus.choices, default=CredentialStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    rotation_due_at = models.DateTimeField(null=True, blank=True)
    overdue_flagged_at = models.DateTimeField(null=True, blank=True)
    retire_at = models.DateTimeField(null=True, blank=True, help_text="End of the grace period.")
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "name"], name="credential_name_unique"),
            models.CheckConstraint(
                condition=~(models.Q(ciphertext="") & models.Q(env_var="")),
                name="credential_has_a_secret_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider.name}/{self.name} ({self.masked or 'env:' + self.env_var})"

    def reveal(self) -> str:
        """The plaintext secret, for the adapter only. Never render or log it."""
        if self.env_var:
            return os.environ.get(self.env_var, "")
        return decrypt_secret(self.ciphertext)


class ModelPrice(models.Model):
    """Price per million tokens. A row with no provider applies to that model on any provider;
    a provider-specific row wins."""

    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.CASCADE, related_name="prices"
    )
    model = models.CharField(max_length=200, help_text="The upstream model name.")
    input_per_million = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_million = models.DecimalField(max_digits=12, decimal_places=6)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model"],
                condition=models.Q(provider__isnull=False),
                name="one_price_per_provider_model",
            ),
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(provider__isnull=True),
                name="one_default_price_per_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider or '*'}:{self.model}"

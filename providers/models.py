"""What the gateway knows about upstream services: providers and their credentials."""

from __future__ import annotations

import os

from django.db import models

from providers.crypto import decrypt_secret


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"
    DEMO = "demo", "Demo (local, offline)"


class Provider(models.Model):
    """One upstream endpoint (an account at OpenAI, a vLLM server, the demo provider…)."""

    name = models.SlugField(unique=True)
    kind = models.CharField(max_length=32, choices=ProviderKind.choices)
    base_url = models.URLField(blank=True, help_text="Empty means the provider's default.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def active_credential(self) -> Credential | None:
        return self.credentials.filter(status=CredentialStatus.ACTIVE).order_by("-created_at").first()


class CredentialStatus(models.TextChoices):
    ACTIVE = "active", "Active"
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

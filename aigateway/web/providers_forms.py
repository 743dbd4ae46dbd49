"""Forms of the Providers page. They parse; the services validate (providers/*services.py).

A secret field is a password input that is never rendered back, not even after an error.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from aigateway.web.forms import DashboardForm
from providers.models import ProviderKind

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OPTIONS_HELP = (
    'A JSON object of kind-specific settings, never secrets. Azure OpenAI: {"api_version": '
    '"2024-10-21", "auth": "api_key"} or "auth": "entra_id" with "tenant_id" and "client_id".'
)


class ProviderSettingsForm(DashboardForm):
    kind = forms.ChoiceField(
        label="Kind",
        choices=ProviderKind.choices,
        error_messages={
            "required": "Choose a kind of provider.",
            "invalid_choice": "Choose a kind of provider.",
        },
    )
    base_url = forms.CharField(
        label="Base URL",
        required=False,
        max_length=200,
        help_text="Empty: the provider's default endpoint (OpenAI, Anthropic). Required for "
        "Azure OpenAI (the resource endpoint) and OpenAI-compatible servers.",
        widget=forms.URLInput(attrs={"placeholder": "https://…", "spellcheck": "false"}),
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    rotation_days = forms.IntegerField(
        label="Rotation days",
        initial=90,
        error_messages={
            "required": "Enter the rotation period in days.",
            "invalid": "The rotation period must be a whole number of days.",
        },
        help_text="A credential is due for rotation this many days after it was added.",
    )
    options = forms.CharField(
        label="Options",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=OPTIONS_HELP,
    )

    def clean_options(self) -> dict[str, Any]:
        text = self.cleaned_data["options"].strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"The options are not valid JSON (line {exc.lineno}, column {exc.colno})."
            ) from None
        if not isinstance(value, dict):
            raise ValidationError('The options must be a JSON object, e.g. {"api_version": "…"}.')
        return value


class ProviderForm(ProviderSettingsForm):
    name = forms.CharField(
        label="Name",
        max_length=50,
        error_messages={"required": "Enter a name for the provider."},
        help_text="Letters, digits, hyphens, underscores: how routes and gateway.yaml name it.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    field_order = ("name", "kind", "base_url", "enabled", "rotation_days", "options")


def options_text(options: dict[str, Any]) -> str:
    return json.dumps(options, indent=2, sort_keys=True) if options else ""


class SecretSourceForm(DashboardForm):
    """A secret typed in (stored encrypted) or the name of an environment variable."""

    ids = "credential_%s"

    name = forms.CharField(
        label="Credential name",
        max_length=200,
        error_messages={"required": "Enter a name for the credential."},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    secret = forms.CharField(
        label="Secret",
        required=False,
        strip=True,
        max_length=4000,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
        help_text="Stored encrypted; shown only masked from now on.",
    )
    env_var = forms.CharField(
        label="…or environment variable",
        required=False,
        max_length=200,
        help_text="Instead of a secret: read at call time from this variable of every process.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_env_var(self) -> str:
        name = self.cleaned_data["env_var"].strip()
        if name and not ENV_NAME.match(name):
            raise ValidationError(
                "An environment variable name has letters, digits and underscores only."
            )
        return str(name)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("secret")) == bool(data.get("env_var")):
            raise ValidationError("Give a secret or an environment variable: one of the two.")
        return data


class RotateForm(SecretSourceForm):
    ids = "rotate_%s"
    grace_minutes = forms.IntegerField(
        label="Grace period (minutes)",
        initial=60,
        min_value=0,
        max_value=10080,
        error_messages={
            "required": "Enter the grace period in minutes.",
            "invalid": "The grace period must be a whole number of minutes.",
            "min_value": "The grace period must be from 0 to 10080 minutes (a week).",
            "max_value": "The grace period must be from 0 to 10080 minutes (a week).",
        },
        help_text="How long the old credentials keep serving calls already under way.",
    )


class GraceForm(DashboardForm):
    grace_minutes = RotateForm.base_fields["grace_minutes"]


class PriceForm(DashboardForm):
    ids = "price_%s"
    model = forms.CharField(
        label="Upstream model",
        max_length=200,
        error_messages={"required": "Enter the upstream model name."},
    )
    input_per_million = forms.CharField(
        label="Input, USD per million tokens",
        max_length=30,
        error_messages={"required": "Enter the input price."},
    )
    output_per_million = forms.CharField(
        label="Output, USD per million tokens",
        max_length=30,
        error_messages={"required": "Enter the output price."},
    )

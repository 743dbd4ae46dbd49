"""Forms of the Routes page. They parse; aigateway/routing/route_services.py validates."""

from __future__ import annotations

from typing import Any

from django import forms

from aigateway.routing.models import CacheMode, CacheScope, RouteStrategy
from aigateway.routing.route_services import DeploymentValues, RouteSettings
from aigateway.web.forms import DashboardForm
from providers.models import Credential, CredentialStatus, Provider


def _number(label: str, *, integer: bool = False, **kwargs: Any) -> forms.Field:
    kind = "whole number" if integer else "number"
    messages = {
        "required": f"Enter the {label.lower()}.",
        "invalid": f"The {label.lower()} must be a {kind}.",
    }
    field = forms.IntegerField if integer else forms.FloatField
    return field(label=label, error_messages=messages, **kwargs)


def _choice(label: str, choices: Any) -> forms.ChoiceField:
    messages = {
        "required": f"Choose a {label.lower()}.",
        "invalid_choice": f"Choose a {label.lower()}.",
    }
    return forms.ChoiceField(label=label, choices=choices, error_messages=messages)


class RouteSettingsForm(DashboardForm):
    description = forms.CharField(label="Description", required=False, max_length=500)
    strategy = _choice("Strategy", RouteStrategy.choices)
    max_retries = _number(
        "Retries",
        integer=True,
        initial=3,
        help_text="Rounds over the deployments after the first (0 to 10).",
    )
    backoff_base_seconds = _number(
        "First backoff (s)",
        initial=1.0,
        help_text="Exponential backoff with jitter, unless the provider says when to retry.",
    )
    backoff_cap_seconds = _number("Longest backoff (s)", initial=60.0)
    timeout_seconds = _number(
        "Deadline (s)", initial=600.0, help_text="Per request, retries and failovers included."
    )
    fallback_on_errors = forms.BooleanField(
        label="Fail over on errors (5xx, timeouts, resets)", required=False, initial=True
    )
    fallback_on_rate_limit = forms.BooleanField(
        label="Fail over when rate limited", required=False, initial=True
    )
    fallback_on_context_window = forms.BooleanField(
        label="Fail over to a larger context window", required=False, initial=True
    )
    fallback_on_content_filter = forms.BooleanField(
        label="Fail over when a content filter refuses", required=False
    )
    cache_mode = _choice("Cache mode", CacheMode.choices)
    cache_scope = _choice("Cache scope", CacheScope.choices)
    cache_ttl_seconds = _number("Cache lifetime (s)", integer=True, initial=3600)
    semantic_cache = forms.BooleanField(label="Semantic cache (similar prompts)", required=False)
    semantic_threshold = _number(
        "Similarity threshold",
        initial=0.97,
        help_text="Cosine similarity from 0.5 to 1.0 (0.97 measured "
        "precise; lower gives wrong answers more often).",
    )

    def settings(self) -> RouteSettings:
        return RouteSettings(
            **{n: self.cleaned_data[n] for n in RouteSettings.__dataclass_fields__}
        )


class RouteForm(RouteSettingsForm):
    name = forms.CharField(
        label="Name",
        max_length=200,
        error_messages={"required": "Enter the route's name."},
        help_text="What clients send as model, e.g. gpt-4o or smart.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    field_order = ("name", "description", "strategy")


def route_initial(settings: RouteSettings) -> dict[str, Any]:
    return {n: getattr(settings, n) for n in RouteSettings.__dataclass_fields__}


class DeploymentForm(DashboardForm):
    ids = "deployment_%s"

    provider = forms.ModelChoiceField(
        label="Provider",
        queryset=Provider.objects.order_by("name"),
        empty_label="Choose…",
        error_messages={"required": "Choose a provider.", "invalid_choice": "Choose a provider."},
    )
    upstream_model = forms.CharField(
        label="Upstream model",
        max_length=200,
        error_messages={"required": "Enter the upstream model name."},
        help_text="The provider's model name (Azure: the deployment name).",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    credential = forms.ModelChoiceField(
        label="Pinned credential",
        required=False,
        queryset=Credential.objects.filter(status=CredentialStatus.ACTIVE)
        .select_related("provider")
        .order_by("provider__name", "name"),
        empty_label="The provider's active credential",
        error_messages={"invalid_choice": "Choose an active credential of the provider."},
    )
    weight = _number(
        "Weight", integer=True, initial=1, help_text="Share of traffic with the weighted strategy."
    )
    position = _number(
        "Position",
        integer=True,
        required=False,
        help_text="0 is tried first. Empty: last (new) or unchanged.",
    )
    max_context_tokens = _number(
        "Context window (tokens)",
        integer=True,
        required=False,
        help_text="For failover to a larger context window.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["credential"]
        field.label_from_instance = lambda c: (  # type: ignore[attr-defined]
            f"{c.provider.name} / {c.name} ({c.masked or 'env:' + c.env_var})"
        )

    def values(self) -> DeploymentValues:
        data = self.cleaned_data
        return DeploymentValues(
            provider=data["provider"],
            upstream_model=data["upstream_model"],
            credential=data["credential"],
            weight=data["weight"],
            enabled=data["enabled"],
            max_context_tokens=data["max_context_tokens"],
            position=data["position"],
        )

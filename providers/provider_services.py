"""Writes to providers and prices (credentials: providers/services.py and rotation.py).

Every change is validated with the rules ``gateway apply`` uses (aigateway/config_as_code), so
whatever the dashboard saves exports to a file that applies back to the same state, and is
audited with the object before and after. Saving a Provider or ModelPrice bumps the config
version (providers/signals.py): the API uses the change within AIGATEWAY_CONFIG_CACHE_SECONDS,
at once in the process that made it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from aigateway.audit.changes import audit_change, model_snapshot
from aigateway.config_as_code.reader import Fields
from aigateway.config_as_code.specs import ConfigError
from providers.models import ModelPrice, Provider, ProviderKind

NAME = re.compile(r"^[-a-zA-Z0-9_]+$")  # the file's provider names (a slug)
# Kinds whose adapter has no default endpoint.
NEEDS_BASE_URL = {
    ProviderKind.AZURE_OPENAI: "Azure OpenAI",
    ProviderKind.OPENAI_COMPATIBLE: "An OpenAI-compatible server",
}
AZURE_AUTH = ("api_key", "entra_id")
MAX_ROTATION_DAYS = 3650


def _errors(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def _checked_options(options: Any, kind: str, errors: dict[str, list[str]]) -> dict[str, Any]:
    """JSON values whose names do not look like secrets (the file's rule), plus Azure's."""
    try:
        checked = Fields({"options": options}, "", ("options",)).options("options")
    except ConfigError as exc:
        errors.setdefault("options", []).append(str(exc).removeprefix("options: ").capitalize())
        return {}
    if kind == ProviderKind.AZURE_OPENAI:
        auth = checked.get("auth", "api_key")
        if auth not in AZURE_AUTH:
            errors.setdefault("options", []).append(
                "Azure OpenAI's auth option must be api_key or entra_id."
            )
        elif auth == "entra_id" and not (checked.get("tenant_id") and checked.get("client_id")):
            errors.setdefault("options", []).append(
                "Entra ID authentication needs the tenant_id and client_id options."
            )
    return checked


def _validated(
    *, kind: str, base_url: str, options: Any, rotation_days: int
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    if kind not in ProviderKind.values:
        errors["kind"] = ["Choose a kind of provider."]
    base_url = base_url.strip()
    if base_url:
        try:
            URLValidator(schemes=["http", "https"])(base_url)
        except ValidationError:
            errors["base_url"] = ["Enter the base URL as http://… or https://…."]
        if len(base_url) > 200:
            errors["base_url"] = ["The base URL is longer than 200 characters."]
    elif kind in NEEDS_BASE_URL:
        errors["base_url"] = [f"{NEEDS_BASE_URL[kind]} needs a base URL."]  # type: ignore[index]
    if not 1 <= rotation_days <= MAX_ROTATION_DAYS:
        errors["rotation_days"] = [f"Rotation days must be from 1 to {MAX_ROTATION_DAYS}."]
    checked = _checked_options(options if options is not None else {}, kind, errors)
    values = {
        "kind": kind,
        "base_url": base_url,
        "options": checked,
        "rotation_days": rotation_days,
    }
    return values, errors


@transaction.atomic
def provider_create(
    *,
    name: str,
    kind: str,
    base_url: str = "",
    enabled: bool = True,
    options: dict[str, Any] | None = None,
    rotation_days: int = 90,
    actor: AbstractBaseUser | None = None,
) -> Provider:
    """A new provider (no credential yet). Raises ValidationError naming the fields."""
    values, errors = _validated(
        kind=kind, base_url=base_url, options=options, rotation_days=rotation_days
    )
    name = name.strip()
    if not NAME.match(name) or len(name) > 50:
        errors["name"] = ["The name must be 1 to 50 letters, digits, hyphens or underscores."]
    elif Provider.objects.filter(name=name).exists():
        errors["name"] = [f"A provider named {name} already exists."]
    _errors(errors)
    provider = Provider.objects.create(name=name, enabled=enabled, **values)
    audit_change(
        actor=actor,
        action="provider.created",
        target=provider,
        before=None,
        after=model_snapshot(provider),
    )
    return provider


@transaction.atomic
def provider_update(
    *,
    provider: Provider,
    kind: str,
    base_url: str,
    enabled: bool,
    options: dict[str, Any] | None,
    rotation_days: int,
    actor: AbstractBaseUser | None = None,
) -> Provider:
    """Change a provider's settings (its name is its identity in gateway.yaml and usage
    records, so it stays). Existing credentials keep their rotation dates."""
    values, errors = _validated(
        kind=kind, base_url=base_url, options=options, rotation_days=rotation_days
    )
    _errors(errors)
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    before = model_snapshot(provider)
    for field, value in (values | {"enabled": enabled}).items():
        setattr(provider, field, value)
    provider.save()
    audit_change(
        actor=actor,
        action="provider.updated",
        target=provider,
        before=before,
        after=model_snapshot(provider),
    )
    return provider


# -- prices ---------------------------------------------------------------------------------
def _price(value: object, field: str, label: str) -> Decimal:
    try:
        return Fields({field: str(value)}, "", (field,)).decimal(field)
    except ConfigError as exc:
        reason = str(exc).removeprefix(f"{field}: ")
        raise ValidationError({field: [f"The {label} price {reason}."]}) from None


@transaction.atomic
def price_set(
    *,
    provider: Provider | None,
    model: str,
    input_per_million: object,
    output_per_million: object,
    actor: AbstractBaseUser | None = None,
) -> ModelPrice:
    """Set the price per million tokens of ``model`` on ``provider`` (None: any provider)."""
    errors: dict[str, list[str]] = {}
    model = model.strip()
    if not model or len(model) > 200:
        errors["model"] = ["Enter the upstream model name (at most 200 characters)."]
    prices: dict[str, Decimal] = {}
    for field, label, value in (
        ("input_per_million", "input", input_per_million),
        ("output_per_million", "output", output_per_million),
    ):
        try:
            prices[field] = _price(value, field, label)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    _errors(errors)
    # filter(provider=None) is IS NULL: the any-provider price of the model.
    row = ModelPrice.objects.select_for_update().filter(provider=provider, model=model).first()
    skip = ("updated_at",)  # changes on every save; the prices say what changed
    before = model_snapshot(row, exclude=skip) if row is not None else None
    if row is None:
        row = ModelPrice(provider=provider, model=model)
    row.input_per_million = prices["input_per_million"]
    row.output_per_million = prices["output_per_million"]
    row.save()
    action = "model_price.created" if before is None else "model_price.updated"
    audit_change(
        actor=actor,
        action=action,
        target=row,
        before=before,
        after=model_snapshot(row, exclude=skip),
    )
    return row


@transaction.atomic
def price_delete(*, price: ModelPrice, actor: AbstractBaseUser | None = None) -> None:
    before, pk, label = model_snapshot(price), price.pk, str(price)
    price.delete()
    price.pk = pk  # the audit entry names what was deleted
    audit_change(
        actor=actor,
        action="model_price.deleted",
        target=price,
        before=before,
        after=None,
        target_label=label,
    )

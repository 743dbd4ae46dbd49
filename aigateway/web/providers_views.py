"""The Providers page: providers, their credentials (masked), rotation, connection tests and
prices. Views parse, call one service and render; the services validate and audit.

Who: gateway operators and platform admins of every organisation change things
(aigateway/web/permissions.py: can_edit_gateway_config); other platform admins and auditors
read; team admins and members get 403, anonymous users the login page. Every POST checks
the editor rule itself, so a reader's forged POST is 403 and changes nothing. An unknown
provider, credential or price is 404. An invalid form is 400, re-rendered with its errors.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from aigateway.web.denied import denied_as_page
from aigateway.web.permissions import (
    can_edit_gateway_config,
    require_gateway_config_editor,
    require_gateway_reader,
)
from aigateway.web.providers_forms import (
    GraceForm,
    PriceForm,
    ProviderForm,
    ProviderSettingsForm,
    RotateForm,
    SecretSourceForm,
    options_text,
)
from aigateway.web.providers_selectors import provider_detail, providers_overview
from providers.connection import provider_connection_test
from providers.models import Credential, CredentialStatus, ModelPrice, Provider
from providers.provider_services import price_delete, price_set, provider_create, provider_update
from providers.rotation import CredentialVerificationFailed, credential_rotate
from providers.services import credential_activate, credential_create, credential_retire

_denied = denied_as_page(nav="providers", back_to="web:providers", back_label="Back to providers")


def _user(request: HttpRequest) -> Any:
    return request.user


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def providers_page(request: HttpRequest) -> HttpResponse:
    require_gateway_reader(request.user)
    form = ProviderForm(request.POST or None, initial={"enabled": True, "rotation_days": 90})
    if request.method == "POST":
        require_gateway_config_editor(request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                provider = provider_create(
                    name=data["name"],
                    kind=data["kind"],
                    base_url=data["base_url"],
                    enabled=data["enabled"],
                    options=data["options"],
                    rotation_days=data["rotation_days"],
                    actor=_user(request),
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(
                    request,
                    f"Added the provider {provider.name}. Next: add a "
                    "credential and test the connection.",
                )
                return redirect("web:provider", pk=provider.pk)
    context = {
        "nav": "providers",
        "rows": providers_overview(),
        "form": form,
        "can_edit": can_edit_gateway_config(request.user),
    }
    return render(request, "web/providers.html", context, status=400 if form.is_bound else 200)


def _detail(request: HttpRequest, pk: int, status: int = 200, **forms: Any) -> HttpResponse:
    try:
        detail = provider_detail(pk)
    except Provider.DoesNotExist:
        raise Http404(f"There is no provider #{pk}.") from None
    provider = detail.row.provider
    initial = {
        "kind": provider.kind,
        "base_url": provider.base_url,
        "enabled": provider.enabled,
        "rotation_days": provider.rotation_days,
        "options": options_text(provider.options or {}),
    }
    context = {
        "nav": "providers",
        "detail": detail,
        "provider": provider,
        "can_edit": can_edit_gateway_config(request.user),
        "settings_form": forms.pop("settings_form", None) or ProviderSettingsForm(initial=initial),
        "credential_form": forms.pop("credential_form", None) or SecretSourceForm(),
        "rotate_form": forms.pop("rotate_form", None) or RotateForm(initial={"grace_minutes": 60}),
        "price_form": forms.pop("price_form", None) or PriceForm(),
        **forms,
    }
    return render(request, "web/providers/detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def provider_page(request: HttpRequest, pk: int) -> HttpResponse:
    require_gateway_reader(request.user)
    if request.method == "GET":
        return _detail(request, pk)
    require_gateway_config_editor(request.user)
    provider = get_object_or_404(Provider, pk=pk)
    form = ProviderSettingsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            provider_update(
                provider=provider,
                kind=data["kind"],
                base_url=data["base_url"],
                enabled=data["enabled"],
                options=data["options"],
                rotation_days=data["rotation_days"],
                actor=_user(request),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Saved the settings of {provider.name}.")
            return redirect("web:provider", pk=pk)
    return _detail(request, pk, 400, settings_form=form)


@login_required
@require_POST
@_denied
def provider_test(request: HttpRequest, pk: int) -> HttpResponse:
    """A real call to the provider with its active credential (htmx: the result alone)."""
    require_gateway_config_editor(request.user)
    provider = get_object_or_404(Provider, pk=pk)
    result = provider_connection_test(provider=provider)
    if request.headers.get("HX-Request") == "true":
        context = {"result": result, "provider": provider}
        return render(request, "web/providers/detail.html#connection-result", context)
    return _detail(request, pk, result=result)


@login_required
@require_POST
@_denied
def credential_add(request: HttpRequest, pk: int) -> HttpResponse:
    require_gateway_config_editor(request.user)
    provider = get_object_or_404(Provider, pk=pk)
    form = SecretSourceForm(request.POST)
    if form.is_valid():
        name = form.cleaned_data["name"].strip()
        if provider.credentials.filter(name=name).exists():
            form.add_error("name", f"{provider.name} already has a credential named {name}.")
        else:
            credential = credential_create(
                provider=provider,
                name=name,
                secret=form.cleaned_data["secret"],
                env_var=form.cleaned_data["env_var"],
                actor=_user(request),
            )
            shown = credential.masked or f"env:{credential.env_var}"
            messages.success(request, f"Added the credential {name} ({shown}).")
            return redirect("web:provider", pk=pk)
    return _detail(request, pk, 400, credential_form=form)


@login_required
@require_POST
@_denied
def credential_rotate_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Store the new secret as pending, verify it with a live call, then move traffic to it;
    the old credentials keep serving calls under way for the grace period."""
    require_gateway_config_editor(request.user)
    provider = get_object_or_404(Provider, pk=pk)
    form = RotateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        name = data["name"].strip()
        if provider.credentials.filter(name=name).exists():
            form.add_error("name", f"{provider.name} already has a credential named {name}.")
        else:
            try:
                result = async_to_sync(credential_rotate)(
                    provider=provider,
                    name=name,
                    secret=data["secret"],
                    env_var=data["env_var"],
                    grace=timedelta(minutes=data["grace_minutes"]),
                    actor=_user(request),
                )
            except CredentialVerificationFailed as exc:
                form.add_error(
                    None,
                    f"The new credential failed verification "
                    f"({exc.kind.replace('_', ' ')}): traffic still uses the "
                    "current one.",
                )
            else:
                retiring = ", ".join(c.name for c in result.retiring) or "none"
                messages.success(
                    request, f"Rotated to {name}: verified and active. Retiring: {retiring}."
                )
                return redirect("web:provider", pk=pk)
    return _detail(request, pk, 400, rotate_form=form)


def _credential(pk: int) -> Credential:
    return get_object_or_404(Credential.objects.select_related("provider"), pk=pk)


@login_required
@require_POST
@_denied
def credential_activate_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Verify the credential with a live call, then make it the one new traffic uses."""
    require_gateway_config_editor(request.user)
    credential = _credential(pk)
    provider = credential.provider
    form = GraceForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        return _detail(request, provider.pk, 400)
    check = provider_connection_test(provider=provider, credential=credential)
    if not check.ok:
        messages.error(request, f"{credential.name} was not activated: {check.message}")
        return _detail(request, provider.pk, 400)
    grace = timedelta(minutes=form.cleaned_data["grace_minutes"])
    retiring = credential_activate(credential=credential, grace=grace, actor=_user(request))
    names = ", ".join(c.name for c in retiring) or "none"
    messages.success(request, f"{credential.name} is active. Retiring: {names}.")
    return redirect("web:provider", pk=provider.pk)


@login_required
@require_POST
@_denied
def credential_retire_view(request: HttpRequest, pk: int) -> HttpResponse:
    require_gateway_config_editor(request.user)
    credential = _credential(pk)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Please tick the confirmation box to retire the credential.")
        return _detail(request, credential.provider_id, 400)
    was_active = credential.status == CredentialStatus.ACTIVE
    credential_retire(credential=credential, actor=_user(request))
    left = credential.provider.active_credential()
    note = "" if left or not was_active else " The provider has no active credential now."
    messages.success(request, f"Retired {credential.name}.{note}")
    return redirect("web:provider", pk=credential.provider_id)


@login_required
@require_POST
@_denied
def price_set_view(request: HttpRequest, pk: int) -> HttpResponse:
    require_gateway_config_editor(request.user)
    provider = get_object_or_404(Provider, pk=pk)
    form = PriceForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            price = price_set(
                provider=provider,
                model=data["model"],
                input_per_million=data["input_per_million"],
                output_per_million=data["output_per_million"],
                actor=_user(request),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Saved the price of {price.model} on {provider.name}.")
            return redirect("web:provider", pk=pk)
    return _detail(request, pk, 400, price_form=form)


@login_required
@require_POST
@_denied
def price_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    require_gateway_config_editor(request.user)
    price = get_object_or_404(ModelPrice.objects.select_related("provider"), pk=pk)
    back = price.provider_id
    model = price.model
    price_delete(price=price, actor=_user(request))
    messages.success(request, f"Deleted the price of {model}.")
    return redirect("web:provider", pk=back) if back else redirect("web:providers")

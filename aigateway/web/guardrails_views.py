"""The Guardrails page: the policies a user may see, creating, changing and deleting them,
and a "try it" box that shows what a text would yield under a policy (findings and the
redacted text) without calling any model. Views parse, call a service or selector, render;
who may do what is decided by aigateway.guardrails.permissions.

Status codes: a user who may not use the page (members, outsiders) gets 403; a policy they
may not see is 404 (as if it did not exist); one they may see but not change is 403; an
invalid form is 400, re-rendered with its errors. The "try it" fragment (htmx) is checked
like the page.
"""

from __future__ import annotations

from typing import Any

import yaml
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from aigateway.guardrails.engine import preview
from aigateway.guardrails.models import GuardrailPolicy
from aigateway.guardrails.policy import merge, policy_stored
from aigateway.guardrails.selectors import (
    GuardrailsOverview,
    guardrails_visible_to,
    policy_get_for_user,
    target_resolve,
)
from aigateway.guardrails.services import PolicyValues, policy_delete, policy_set
from aigateway.web.denied import denied_as_page
from aigateway.web.forms import DashboardForm

LIMITS = ("max_prompt_tokens", "max_messages", "max_output_tokens")
RULES_HELP = (
    "A YAML list, one rule per line, e.g. {detect: pii, action: redact, direction: both}. "
    "detect: a category (secrets, pii, injection), a detector (pii.card) or custom.NAME with "
    "pattern: or words:. action: block, redact or flag (injection: flag or block). "
    "direction: input, output or both."
)


def _limit_field(label: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        error_messages={"invalid": f"The {label.lower()} must be a whole number."},
    )


class PolicyForm(DashboardForm):
    """A policy's values. Parsing only: the service validates (aigateway/guardrails/rules.py)."""

    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    reversible = forms.BooleanField(
        label="Reversible redaction",
        required=False,
        help_text="Put redacted values back into the answer the requester receives. "
        "Stored records (cache, logs, audit, usage) keep the placeholders.",
    )
    max_prompt_tokens = _limit_field("Max prompt tokens")
    max_messages = _limit_field("Max messages")
    max_output_tokens = _limit_field("Max output tokens")
    allowed_params = forms.CharField(
        label="Allowed parameters",
        required=False,
        help_text="Comma-separated OpenAI parameter names (temperature, top_p, stop, tools, …). "
        "Empty: any parameter. 'none': none beyond model, messages, stream and max_tokens.",
    )
    rules = forms.CharField(
        label="Rules",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=RULES_HELP,
    )

    def clean_allowed_params(self) -> list[str] | None:
        text = self.cleaned_data["allowed_params"].strip()
        if not text:
            return None
        if text.lower() == "none":
            return []
        return [name.strip() for name in text.split(",") if name.strip()]

    def clean_rules(self) -> Any:
        text = self.cleaned_data["rules"]
        if not text.strip():
            return []
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ValidationError(f"The rules are not valid YAML{where}.") from None

    def values(self) -> PolicyValues:
        data = self.cleaned_data
        return PolicyValues(
            enabled=data["enabled"],
            reversible=data["reversible"],
            allowed_params=data["allowed_params"],
            rules=data["rules"],
            **{name: data[name] for name in LIMITS},
        )


class NewPolicyForm(PolicyForm):
    target = forms.CharField(
        label="Applies to", error_messages={"required": "Choose what the policy applies to."}
    )
    field_order = ("target",)


class TryForm(forms.Form):
    policy = forms.IntegerField(error_messages={"required": "Choose a policy."})
    direction = forms.ChoiceField(
        choices=[("input", "A prompt (input)"), ("output", "An answer (output)")], initial="input"
    )
    text = forms.CharField(
        max_length=20_000, strip=False, error_messages={"required": "Enter a text to try."}
    )


def policy_initial(policy: GuardrailPolicy) -> dict[str, Any]:
    params = policy.allowed_params
    rules = policy.rules or []
    return {
        "enabled": policy.enabled,
        "reversible": policy.reversible,
        **{name: getattr(policy, name) for name in LIMITS},
        "allowed_params": None if params is None else (", ".join(params) or "none"),
        "rules": yaml.safe_dump(rules, sort_keys=False, default_flow_style=None, width=200)
        if rules
        else "",
    }


_denied_as_page = denied_as_page(
    nav="guardrails", back_to="web:dashboard", back_label="Back to the overview"
)


def _page(
    request: HttpRequest,
    overview: GuardrailsOverview,
    form: NewPolicyForm,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    try_form = extra.pop("try_form", None) or TryForm(initial={"direction": "input"})
    context = {"nav": "guardrails", "overview": overview, "form": form, "try_form": try_form}
    return render(request, "web/guardrails.html", context | extra, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@_denied_as_page
def guardrails_page(request: HttpRequest) -> HttpResponse:
    overview = guardrails_visible_to(request.user)  # 403 for members before anything else
    form = NewPolicyForm(request.POST or None, initial={"enabled": True})
    if form.is_valid():
        scope, organisation, team, route = target_resolve(request.user, form.cleaned_data["target"])
        try:
            policy = policy_set(
                actor=request.user,  # type: ignore[arg-type]
                scope=scope,
                organisation=organisation,
                team=team,
                route=route,
                values=form.values(),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Saved the guardrails of {policy.target_label}.")
            return redirect("web:guardrails")
    return _page(request, overview, form, status=400 if form.is_bound else 200)


@login_required
@require_http_methods(["GET", "POST"])
@_denied_as_page
def guardrail_edit(request: HttpRequest, pk: int) -> HttpResponse:
    policy, can_manage = policy_get_for_user(request.user, pk)
    if not can_manage:
        raise PermissionDenied(
            f"You may read the guardrails of {policy.target_label}, not change them."
        )
    form = PolicyForm(request.POST or None, initial=policy_initial(policy))
    if form.is_valid():
        try:
            policy_set(
                actor=request.user,  # type: ignore[arg-type]
                scope=policy.scope,
                organisation=policy.organisation,
                team=policy.team,
                route=policy.route,
                values=form.values(),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Saved the guardrails of {policy.target_label}.")
            return redirect("web:guardrails")
    context = {"nav": "guardrails", "form": form, "policy": policy}
    return render(
        request, "web/guardrails/edit.html", context, status=400 if form.is_bound else 200
    )


@login_required
@require_http_methods(["GET", "POST"])
@_denied_as_page
def guardrail_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    policy, can_manage = policy_get_for_user(request.user, pk)
    if not can_manage:
        raise PermissionDenied(
            f"You may read the guardrails of {policy.target_label}, not delete them."
        )
    if request.method == "POST":
        label = policy.target_label
        policy_delete(actor=request.user, policy=policy)  # type: ignore[arg-type]
        messages.success(request, f"Deleted the guardrails of {label}.")
        return redirect("web:guardrails")
    return render(request, "web/guardrails/delete.html", {"nav": "guardrails", "policy": policy})


@login_required
@require_POST
@_denied_as_page
def guardrail_try(request: HttpRequest) -> HttpResponse:
    """What a text would yield under a policy: nothing is called, stored or logged. An htmx
    request gets the result fragment; a plain form post the whole page with it."""
    overview = guardrails_visible_to(request.user)  # 403 for members, as the page
    form = TryForm(request.POST)
    result = None
    policy = None
    if form.is_valid():
        policy, _ = policy_get_for_user(request.user, form.cleaned_data["policy"])  # else 404
        compiled = merge([policy_stored(policy)])
        result = preview(
            compiled, form.cleaned_data["text"], direction=form.cleaned_data["direction"]
        )
    context = {"try_form": form, "result": result, "tried": policy}
    status = 200 if form.is_valid() else 400
    if request.headers.get("HX-Request") == "true":
        return render(request, "web/guardrails.html#try-result", context, status=status)
    return _page(request, overview, NewPolicyForm(initial={"enabled": True}), status, **context)

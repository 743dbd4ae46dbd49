"""The SSO admin pages (/sso/): organisations' IdPs with the SP URLs to copy into the IdP,
create/edit an IdP (fields, metadata URL or XML), mapping rules with a preview (htmx), and
the per-organisation password sign-in switch. Thin: parse, call a service or selector,
render; permissions in auth/sso/permissions.py.

Status codes as elsewhere in the dashboard: a page a user may not use at all is 403 (members,
team admins, outsiders); an IdP they may not see is 404; one they may read but not change
is 403 on POST; an invalid form is 400, re-rendered with its errors."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from aigateway.web.denied import denied_as_page
from auth.models import Organisation, OrgRole
from auth.sso import services
from auth.sso.forms import IdpForm, LocalLoginForm, PreviewForm, RuleForm, idp_initial
from auth.sso.mapping import resolve, rules_of
from auth.sso.models import IdentityProvider, MappingRule
from auth.sso.permissions import (
    idp_get_for_user,
    organisation_for_sso_change,
    require_idp_change,
    require_sso_reader,
)
from auth.sso.selectors import (
    has_break_glass_admin,
    recent_refusals,
    sp_urls,
    sso_overview,
    teams_of,
)

_denied = denied_as_page(nav="sso", back_to="web:dashboard", back_label="Back to the overview")


def _idp_or_404(request: HttpRequest, pk: int) -> tuple[IdentityProvider, bool]:
    try:
        return idp_get_for_user(request.user, pk)
    except IdentityProvider.DoesNotExist:
        raise Http404("no such identity provider") from None


@login_required
@require_http_methods(["GET"])
@_denied
def sso_list(request: HttpRequest) -> HttpResponse:
    rows = sso_overview(require_sso_reader(request.user))
    return render(request, "sso/list.html", {"nav": "sso", "rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def idp_new(request: HttpRequest, org_slug: str) -> HttpResponse:
    try:
        organisation = organisation_for_sso_change(request.user, org_slug)
    except Organisation.DoesNotExist:
        raise Http404("no such organisation") from None
    existing = IdentityProvider.objects.filter(organisation=organisation).first()
    if existing is not None:
        return redirect("sso:idp_detail", pk=existing.pk)
    form = IdpForm(request.POST or None, request.FILES or None, initial={"enabled": True})
    if form.is_valid():
        try:
            idp = services.idp_save(
                actor=request.user,  # type: ignore[arg-type]
                organisation=organisation,
                values=form.values(),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Saved the identity provider of {organisation.name}.")
            return redirect("sso:idp_detail", pk=idp.pk)
    context = {
        "nav": "sso",
        "form": form,
        "organisation": organisation,
        "sp": sp_urls(organisation),
    }
    return render(request, "sso/new.html", context, status=400 if form.is_bound else 200)


def _detail(request: HttpRequest, idp: IdentityProvider, can_change: bool, **extra: Any) -> dict:
    teams = teams_of(idp.organisation_id)
    context = {
        "nav": "sso",
        "idp": idp,
        "can_change": can_change,
        "sp": sp_urls(idp.organisation),
        "rules": rules_of(idp),
        "form": IdpForm(initial=idp_initial(idp)),
        "rule_form": RuleForm(teams=teams),
        "preview_form": PreviewForm(),
        "refusals": recent_refusals(idp),
    }
    return context | extra


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def idp_detail(request: HttpRequest, pk: int) -> HttpResponse:
    idp, can_change = _idp_or_404(request, pk)
    if request.method != "POST":
        return render(request, "sso/detail.html", _detail(request, idp, can_change))
    require_idp_change(request.user, idp)
    form = IdpForm(request.POST, request.FILES or None)
    if form.is_valid():
        try:
            services.idp_save(
                actor=request.user,  # type: ignore[arg-type]
                organisation=idp.organisation,
                values=form.values(),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Saved the identity provider.")
            return redirect("sso:idp_detail", pk=idp.pk)
    context = _detail(request, idp, can_change, form=form)
    return render(request, "sso/detail.html", context, status=400)


@login_required
@require_POST
@_denied
def idp_delete(request: HttpRequest, pk: int) -> HttpResponse:
    idp, _ = _idp_or_404(request, pk)
    require_idp_change(request.user, idp)
    name = idp.organisation.name
    services.idp_delete(actor=request.user, idp=idp)  # type: ignore[arg-type]
    messages.success(request, f"Removed the identity provider of {name}.")
    return redirect("sso:list")


@login_required
@require_POST
@_denied
def rule_add(request: HttpRequest, pk: int) -> HttpResponse:
    idp, can_change = _idp_or_404(request, pk)
    require_idp_change(request.user, idp)
    form = RuleForm(request.POST, teams=teams_of(idp.organisation_id))
    if form.is_valid():
        try:
            services.mapping_rule_create(
                actor=request.user,  # type: ignore[arg-type]
                idp=idp,
                value=form.cleaned_data["value"],
                role=form.cleaned_data["role"],
                team=form.chosen_team(),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Added the mapping rule.")
            return redirect("sso:idp_detail", pk=idp.pk)
    context = _detail(request, idp, can_change, rule_form=form)
    return render(request, "sso/detail.html", context, status=400)


@login_required
@require_POST
@_denied
def rule_delete(request: HttpRequest, pk: int, rule_pk: int) -> HttpResponse:
    idp, _ = _idp_or_404(request, pk)
    require_idp_change(request.user, idp)
    try:
        rule = idp.rules.get(pk=rule_pk)
    except MappingRule.DoesNotExist:
        raise Http404("no such rule") from None
    services.mapping_rule_delete(actor=request.user, rule=rule)  # type: ignore[arg-type]
    messages.success(request, "Removed the mapping rule.")
    return redirect("sso:idp_detail", pk=idp.pk)


@login_required
@require_POST
@_denied
def rule_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """What a set of groups would yield (nothing is stored). htmx: the result fragment;
    a plain form post: the whole page with it. Auditors may use it too (it only reads)."""
    idp, can_change = _idp_or_404(request, pk)
    form = PreviewForm(request.POST)
    result = None
    if form.is_valid():
        result = resolve(rules_of(idp), form.group_list())
    teams = {t.pk: t for t in teams_of(idp.organisation_id)}
    context = {
        "idp": idp,
        "preview_form": form,
        "result": result,
        "org_role_label": OrgRole(result.org_role).label if result and result.org_role else "",
        "team_roles": [(teams.get(t), r) for t, r in result.team_roles.items()] if result else [],
    }
    status = 200 if form.is_valid() else 400
    if request.headers.get("HX-Request") == "true":
        return render(request, "sso/detail.html#preview-result", context, status=status)
    context.pop("idp")
    page = _detail(request, idp, can_change, **context)
    return render(request, "sso/detail.html", page, status=status)


@login_required
@require_POST
@_denied
def local_login_set(request: HttpRequest, org_slug: str) -> HttpResponse:
    try:
        organisation = organisation_for_sso_change(request.user, org_slug)
    except Organisation.DoesNotExist:
        raise Http404("no such organisation") from None
    form = LocalLoginForm(request.POST)
    form.is_valid()
    enabled = bool(form.cleaned_data.get("local_login_enabled"))
    services.organisation_set_local_login(
        actor=request.user,  # type: ignore[arg-type]
        organisation=organisation,
        enabled=enabled,
    )
    state = "on" if enabled else "off (break-glass accounts still may)"
    messages.success(request, f"Password sign-in for {organisation.name} is {state}.")
    if not enabled and not has_break_glass_admin(organisation):
        messages.warning(
            request,
            "No platform admin of this organisation has a break-glass factor: if the IdP is "
            "down, nobody can sign in to fix it. Enrol one: manage.py breakglass enrol <user>.",
        )
    return redirect("sso:list")

"""Teams & keys: the teams a user may see, one team's members, API keys and limits, and the
changes (auth/team_services.py checks rights, validates and audits each one).

Who may do what (auth/permissions.py, as for the management API):
- platform admins: everything for the teams of their organisation, and create teams;
- team admins: their teams' members and keys (not the team's name, routes or deletion);
- auditors: read every team of their organisation; members: read their own teams;
- anyone else: a team they may not see is 404, as if it did not exist.

Status codes: 404 for a team, member or key the user may not see; 403 (a page saying why)
for one they may see but not change; 400 for a form the service refused, re-rendered with
its errors. A key's secret is in the one response that issued it (201, not cached) and
nowhere else: the database has its hash, pages its prefix.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aigateway.web.denied import denied_as_page
from aigateway.web.teams_forms import (
    KeyIssueForm,
    MemberAddForm,
    MemberRoleForm,
    TeamCreateForm,
    TeamForm,
)
from aigateway.web.teams_selectors import (
    organisations_for_new_teams,
    route_names,
    team_detail,
    team_limits,
    teams_for_page,
)
from auth.models import ApiKey, Organisation, Team, TeamMembership
from auth.permissions import require_team_change, require_team_people, team_get_for_user
from auth.roles import roles_of
from auth.selectors import team_key_get, team_member_get
from auth.team_services import (
    member_add,
    member_remove,
    member_set_role,
    team_create,
    team_delete,
    team_key_issue,
    team_key_revoke,
    team_update,
)

_denied = denied_as_page(nav="teams", back_to="web:teams", back_label="Back to teams")


MAX_ID = 2**63 - 1  # a larger id in the URL overflows the database's integer: 404, not 500


def _team(request: HttpRequest, pk: int) -> Team:
    if pk > MAX_ID:
        raise Http404("There is no such team.")
    try:
        return team_get_for_user(request.user, pk)
    except Team.DoesNotExist:
        raise Http404("There is no such team.") from None


def _key(team: Team, key_id: int) -> ApiKey:
    if key_id > MAX_ID:
        raise Http404("The team has no such key.")
    try:
        return team_key_get(team, key_id)
    except ApiKey.DoesNotExist:
        raise Http404("The team has no such key.") from None


def _membership(team: Team, user_id: int) -> TeamMembership:
    if user_id > MAX_ID:
        raise Http404("The team has no such member.")
    try:
        return team_member_get(team, user_id)
    except TeamMembership.DoesNotExist:
        raise Http404("The team has no such member.") from None


# -- the list -------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
@_denied
def teams_page(request: HttpRequest) -> HttpResponse:
    roles = roles_of(request.user)
    organisations = organisations_for_new_teams(roles)
    form = TeamCreateForm(request.POST or None, organisations=organisations, routes=route_names())
    if request.method == "POST":
        if not organisations:
            raise PermissionDenied("Only platform admins can create teams.")
        if form.is_valid():
            data = form.cleaned_data
            try:
                team = team_create(
                    actor=request.user,  # type: ignore[arg-type]
                    organisation=Organisation.objects.get(slug=data["organisation"]),
                    slug=data["slug"],
                    name=data["name"],
                    route_names=data["allowed_routes"],
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, f"Created the team {team.name}.")
                return redirect("web:team_detail", pk=team.pk)
    context = {"nav": "teams", "rows": teams_for_page(roles), "form": form,
               "can_create": bool(organisations)}  # fmt: skip
    return render(request, "web/teams.html", context, status=400 if form.is_bound else 200)


# -- one team -------------------------------------------------------------------------------
def _detail(request: HttpRequest, team: Team, *, status: int = 200, **forms: Any) -> HttpResponse:
    """The team page, with any bound forms given (their errors shown) and the rest empty."""
    detail = team_detail(request.user, team)
    routes = detail.team_routes
    context = {
        "nav": "teams",
        "detail": detail,
        "limits": team_limits(request.user, team),
        "member_form": forms.get("member_form") or MemberAddForm(),
        "key_form": forms.get("key_form") or KeyIssueForm(routes=routes),
        "team_form": forms.get("team_form")
        or TeamForm(
            routes=route_names(),
            initial={"name": team.name, "slug": team.slug, "allowed_routes": routes},
        ),
        "issued": forms.get("issued"),
        "error": forms.get("error"),
    }
    response = render(request, "web/team_detail.html", context, status=status)
    if context["issued"] is not None:
        response["Cache-Control"] = "no-store"  # the secret must not come back from a cache
    return response


@login_required
@require_GET
def team_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, _team(request, pk))


@login_required
@require_GET
def team_limits_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    """Live usage of the team's limits, as out-of-band swaps of each usage cell (htmx)."""
    team = _team(request, pk)
    return render(request, "web/limits/usage.html", {"overview": team_limits(request.user, team)})


@login_required
@require_POST
@_denied
def team_edit(request: HttpRequest, pk: int) -> HttpResponse:
    team = _team(request, pk)
    require_team_change(request.user, team)
    form = TeamForm(request.POST, routes=route_names())
    if form.is_valid():
        data = form.cleaned_data
        try:
            team_update(actor=request.user, team=team, name=data["name"], slug=data["slug"],  # type: ignore[arg-type]
                        route_names=data["allowed_routes"])  # fmt: skip
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Saved the team's settings.")
            return redirect("web:team_detail", pk=team.pk)
    team.refresh_from_db()  # the page shows the stored name, not the refused one
    return _detail(request, team, status=400, team_form=form)


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def team_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes the team with its members and keys."""
    team = _team(request, pk)
    require_team_change(request.user, team)
    if request.method == "POST":
        name = team.name
        team_delete(actor=request.user, team=team)  # type: ignore[arg-type]
        messages.success(request, f"Deleted the team {name}, its members and its keys.")
        return redirect("web:teams")
    return render(request, "web/teams/delete.html", {"nav": "teams", "team": team})


# -- members --------------------------------------------------------------------------------
@login_required
@require_POST
@_denied
def member_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    team = _team(request, pk)
    require_team_people(request.user, team)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            membership = member_add(actor=request.user, team=team,  # type: ignore[arg-type]
                                    username=form.cleaned_data["username"].strip(),
                                    role=form.cleaned_data["role"])  # fmt: skip
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            who = membership.user.get_username()
            messages.success(request, f"Added {who} as {membership.get_role_display()}.")
            return redirect("web:team_detail", pk=team.pk)
    return _detail(request, team, status=400, member_form=form)


@login_required
@require_POST
@_denied
def member_role_view(request: HttpRequest, pk: int, user_id: int) -> HttpResponse:
    team = _team(request, pk)
    membership = _membership(team, user_id)
    require_team_people(request.user, team)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        sentence = " ".join(str(e) for e in form["role"].errors) or "Choose a role."
        return _detail(request, team, status=400, error=f"The role was not changed: {sentence}")
    member_set_role(actor=request.user, team=team, membership=membership,  # type: ignore[arg-type]
                    role=form.cleaned_data["role"])  # fmt: skip
    who = membership.user.get_username()
    messages.success(request, f"{who} is now {membership.get_role_display()}.")
    return redirect("web:team_detail", pk=team.pk)


@login_required
@require_POST
@_denied
def member_remove_view(request: HttpRequest, pk: int, user_id: int) -> HttpResponse:
    team = _team(request, pk)
    membership = _membership(team, user_id)
    require_team_people(request.user, team)
    who = membership.user.get_username()
    member_remove(actor=request.user, team=team, membership=membership)  # type: ignore[arg-type]
    messages.success(request, f"Removed {who} from the team.")
    return redirect("web:team_detail", pk=team.pk)


# -- keys -----------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
@_denied
def key_issue_view(request: HttpRequest, pk: int) -> HttpResponse:
    """POST issues a key and shows its secret in this response only. The address bar then
    shows this URL: opening it again (GET) leads back to the team, never to the secret."""
    team = _team(request, pk)
    if request.method == "GET":
        return redirect("web:team_detail", pk=team.pk)
    require_team_people(request.user, team)
    routes = sorted(team.allowed_routes.values_list("name", flat=True))
    form = KeyIssueForm(request.POST, routes=routes)
    if form.is_valid():
        data = form.cleaned_data
        try:
            issued = team_key_issue(actor=request.user, team=team, name=data["name"],  # type: ignore[arg-type]
                                    route_names=data["allowed_routes"],
                                    expires_at=data["expires_on"])  # fmt: skip
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return _detail(request, team, status=201, issued=issued)
    return _detail(request, team, status=400, key_form=form)


@login_required
@require_http_methods(["GET", "POST"])
@_denied
def key_revoke_view(request: HttpRequest, pk: int, key_id: int) -> HttpResponse:
    """GET asks for confirmation; POST revokes (calls with the key fail at once)."""
    team = _team(request, pk)
    key = _key(team, key_id)
    require_team_people(request.user, team)
    if request.method == "POST":
        team_key_revoke(actor=request.user, team=team, key=key)  # type: ignore[arg-type]
        messages.success(request, f"Revoked the key {key.name} ({key.prefix}…).")
        return redirect("web:team_detail", pk=team.pk)
    return render(request, "web/teams/revoke.html", {"nav": "teams", "team": team, "key": key})

"""The Usage page's filters: parsed and checked here, turned into the ``UsageFilters`` of
aigateway.usage.aggregates (the management API's), so page, chart and CSV filter alike.

The team and user filters only offer what the user may see; a team or user outside that is
refused with the same sentence as one that does not exist (ids and names reveal nothing).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from aigateway.usage.aggregates import MAX_DAYS, UsageFilters
from auth.models import OrgMembership, TeamMembership, TeamRole
from auth.roles import Roles, teams_visible

GROUPS = (("team", "Team"), ("user", "User"), ("route", "Route"), ("provider", "Provider"))
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def user_in_scope(roles: Roles, username: str) -> int | None:
    """The id of a user whose calls ``roles`` may filter by (None: unknown or out of scope).
    Members: themselves; team admins: their teams' members; platform admins and auditors:
    anyone with a role in their organisations; superusers: anyone."""
    found = get_user_model().objects.filter(username=username).values_list("pk", flat=True)
    pk = found.first()
    if pk is None or roles.superuser or pk == roles.user_id:
        return pk
    administered = [t for t, r in roles.team_roles.items() if r == TeamRole.TEAM_ADMIN]
    members = TeamMembership.objects.filter(user_id=pk)
    in_scope = (
        OrgMembership.objects.filter(user_id=pk, organisation_id__in=roles.wide_orgs).exists()
        or members.filter(team__organisation_id__in=roles.wide_orgs).exists()
        or members.filter(team_id__in=administered).exists()
    )
    return pk if in_scope else None


class UsageFilterForm(forms.Form):
    team = forms.TypedChoiceField(
        label="Team", required=False, coerce=int, empty_value=None,
        error_messages={"invalid_choice": "Choose one of the teams you can see."},
    )  # fmt: skip
    user = forms.CharField(label="User", required=False, max_length=150,
                           help_text="Exact username.")  # fmt: skip
    route = forms.CharField(label="Route", required=False, max_length=200)
    provider = forms.CharField(label="Provider", required=False, max_length=100)
    start = forms.DateField(label="From (UTC)", required=False, widget=DATE,
                            error_messages={"invalid": "Enter a date as YYYY-MM-DD."})  # fmt: skip
    end = forms.DateField(label="To (UTC, inclusive)", required=False, widget=DATE,
                          error_messages={"invalid": "Enter a date as YYYY-MM-DD."})  # fmt: skip
    group_by = forms.ChoiceField(
        label="Totals by", required=False, choices=GROUPS,
        error_messages={"invalid_choice": "Choose team, user, route or provider."},
    )  # fmt: skip
    cursor = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)

    def __init__(self, *args: Any, roles: Roles, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.roles = roles
        teams = teams_visible(roles, everything_for_superusers=True)
        choices = [("", "All teams")] + [(str(t.pk), str(t)) for t in teams]
        self.fields["team"].choices = choices  # type: ignore[attr-defined]

    def clean_user(self) -> int | None:
        username = self.cleaned_data["user"].strip()
        if not username:
            return None
        pk = user_in_scope(self.roles, username)
        if pk is None:
            raise ValidationError(f"There is no user '{username}' whose usage you can see.")
        return pk

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        today = timezone.now().date()
        end: date | None = data.get("end")
        start: date | None = data.get("start")
        if "end" in data and "start" in data:
            end = end or today
            try:
                start = start or end - timedelta(days=29)
            except OverflowError:
                start = None
            if start is None:
                self.add_error("end", "Choose a later date.")
            elif end >= date.max - timedelta(days=1):
                self.add_error("end", "Choose an earlier date.")
            elif start > end:
                self.add_error("start", "'From' must not be after 'To'.")
            elif (end - start).days >= MAX_DAYS:
                self.add_error("end", f"Choose at most {MAX_DAYS} days at a time.")
            data["start"], data["end"] = start, end
        return data

    def filters(self) -> UsageFilters:
        data = self.cleaned_data
        return UsageFilters(
            start=data["start"],
            end=data["end"],
            team_id=data["team"],
            user_id=data["user"],
            route=data["route"].strip() or None,
            provider=data["provider"].strip() or None,
        )

    def grouping(self) -> str:
        """The dimension of the totals table (team unless chosen)."""
        return self.cleaned_data.get("group_by") or "team"

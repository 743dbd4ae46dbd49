"""Forms of the Teams & keys pages. They parse; auth/team_services.py validates and decides
(its ValidationError sentences land on the matching field with ``add_service_errors``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from aigateway.web.forms import DashboardForm
from auth.models import TeamRole


def _route_choices(names: Iterable[str]) -> list[tuple[str, str]]:
    return [(n, n) for n in names]


class TeamForm(DashboardForm):
    prefix = "team"  # several forms share the team page: ids must stay unique
    name = forms.CharField(
        label="Name", max_length=200, error_messages={"required": "Enter the team's name."}
    )
    slug = forms.SlugField(
        label="Slug",
        max_length=50,
        help_text="Letters, digits, hyphens or underscores; unique in the organisation.",
        error_messages={
            "required": "Enter a slug.",
            "invalid": "The slug must be 1 to 50 letters, digits, hyphens or underscores.",
        },
    )
    allowed_routes = forms.MultipleChoiceField(
        label="Routes the team may call",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "There is no route '%(value)s'."},
    )

    def __init__(self, *args: Any, routes: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["allowed_routes"].choices = _route_choices(routes)  # type: ignore[attr-defined]


class TeamCreateForm(TeamForm):
    organisation = forms.ChoiceField(
        label="Organisation",
        error_messages={
            "required": "Choose an organisation.",
            "invalid_choice": "Choose an organisation you administer.",
        },
    )
    field_order = ("organisation", "name", "slug", "allowed_routes")

    def __init__(
        self, *args: Any, organisations: Sequence[tuple[str, str]] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organisation"].choices = list(organisations)  # type: ignore[attr-defined]


class MemberAddForm(DashboardForm):
    prefix = "member"
    username = forms.CharField(
        label="Username", max_length=150, error_messages={"required": "Enter a username."}
    )
    role = forms.ChoiceField(
        label="Role",
        choices=TeamRole.choices,
        initial=TeamRole.MEMBER,
        error_messages={"invalid_choice": "Choose team admin or member."},
    )


class MemberRoleForm(DashboardForm):
    role = forms.ChoiceField(
        label="Role",
        choices=TeamRole.choices,
        error_messages={
            "required": "Choose a role.",
            "invalid_choice": "Choose team admin or member.",
        },
    )


class KeyIssueForm(DashboardForm):
    prefix = "key"
    service_fields = {"expires_at": "expires_on"}

    name = forms.CharField(
        label="Key name",
        max_length=200,
        help_text="What uses it, e.g. ci or notebook. Unique in the team.",
        error_messages={"required": "Enter a name for the key."},
    )
    allowed_routes = forms.MultipleChoiceField(
        label="Routes",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every route the team may call.",
        error_messages={"invalid_choice": "The team may not use '%(value)s'."},
    )
    expires_on = forms.DateField(
        label="Valid until (UTC, inclusive)",
        required=False,
        help_text="Leave empty for a key that does not expire.",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )

    def __init__(self, *args: Any, routes: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["allowed_routes"].choices = _route_choices(routes)  # type: ignore[attr-defined]

    def clean_expires_on(self) -> datetime | None:
        """The end of the chosen day (UTC): the key works through that whole day."""
        day: date | None = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        try:
            return datetime.combine(day + timedelta(days=1), time.min, UTC)
        except OverflowError:
            raise ValidationError("Choose an earlier date.") from None

"""Forms of the SSO pages: parsing only, the services validate."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from aigateway.web.forms import DashboardForm
from auth.models import Team
from auth.sso.models import IdentityProvider, MappedRole
from auth.sso.services import IdpValues

MAX_METADATA_UPLOAD = 1024 * 1024


def _text(label: str, help_text: str = "", required: bool = False, **kw: Any) -> forms.CharField:
    return forms.CharField(label=label, required=required, help_text=help_text, **kw)


class IdpForm(DashboardForm):
    name = _text("Button label", "Shown as “Sign in with … SSO”. Empty: the organisation's name.")
    metadata_url = forms.URLField(
        label="Metadata URL",
        required=False,
        max_length=1024,
        assume_scheme="https",
        help_text="Fetched when you save (10 s timeout); fills entity id, URLs and certificate.",
    )
    metadata_file = forms.FileField(label="Or upload metadata XML", required=False)
    metadata_xml = _text(
        "Or paste metadata XML", widget=forms.Textarea(attrs={"rows": 4}), max_length=1_000_000
    )
    entity_id = _text("IdP entity id", "The IdP's Issuer. Required unless metadata is given.")
    sso_url = _text("SSO URL", "HTTP-Redirect single sign-on endpoint.")
    slo_url = _text("SLO URL", "Optional: single logout; sign-out then also ends the IdP session.")
    x509cert = _text(
        "Signing certificate", "PEM or base64.", widget=forms.Textarea(attrs={"rows": 4})
    )
    groups_attribute = _text(
        "Groups attribute", "Every value is matched by the mapping rules.", initial="groups"
    )
    uid_attribute = _text(
        "User id attribute",
        "Empty: the NameID (must be persistent). Entra ID: "
        "http://schemas.microsoft.com/identity/claims/objectidentifier",
    )
    email_attribute = _text("E-mail attribute", initial="email")
    name_attribute = _text("Name attribute", "e.g. displayName")
    allow_idp_initiated = forms.BooleanField(
        label="Allow sign-in started at the IdP (IdP-initiated)",
        required=False,
        help_text="Off is safer: such responses answer no request of ours, so a response "
        "stolen in transit or from a log could be sent by someone else. The replay cache "
        "still refuses any response used twice.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def clean_metadata_file(self) -> str:
        upload = self.cleaned_data.get("metadata_file")
        if not upload:
            return ""
        if upload.size > MAX_METADATA_UPLOAD:
            raise ValidationError("The metadata file is larger than 1 MiB.")
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("The metadata file is not UTF-8 text.") from None

    def values(self) -> IdpValues:
        data = self.cleaned_data
        return IdpValues(
            name=data["name"],
            entity_id=data["entity_id"],
            sso_url=data["sso_url"],
            slo_url=data["slo_url"],
            x509cert=data["x509cert"],
            groups_attribute=data["groups_attribute"] or "groups",
            uid_attribute=data["uid_attribute"],
            email_attribute=data["email_attribute"],
            name_attribute=data["name_attribute"],
            allow_idp_initiated=data["allow_idp_initiated"],
            enabled=data["enabled"],
            metadata_xml=data["metadata_file"] or data["metadata_xml"],
            metadata_url=data["metadata_url"],
        )


def idp_initial(idp: IdentityProvider) -> dict[str, Any]:
    return {
        name: getattr(idp, name)
        for name in (
            "name", "metadata_url", "entity_id", "sso_url", "slo_url", "x509cert",
            "groups_attribute", "uid_attribute", "email_attribute", "name_attribute",
            "allow_idp_initiated", "enabled",
        )
    }  # fmt: skip


class RuleForm(DashboardForm):
    value = _text("Group or attribute value", required=True, max_length=512)
    role = forms.ChoiceField(label="Role", choices=MappedRole.choices)
    team = forms.TypedChoiceField(label="Team", required=False, coerce=int, empty_value=None)

    def __init__(self, *args: Any, teams: list[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teams = {t.pk: t for t in teams}
        choices = [("", "— none (organisation-wide) —")] + [(str(t.pk), t.name) for t in teams]
        team_field = self.fields["team"]
        assert isinstance(team_field, forms.TypedChoiceField)
        team_field.choices = choices

    def chosen_team(self) -> Team | None:
        pk = self.cleaned_data.get("team")
        return self.teams.get(pk) if pk is not None else None


class PreviewForm(DashboardForm):
    groups = _text(
        "Groups to try",
        "One per line (or comma-separated), as the IdP sends them.",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=20_000,
    )

    def group_list(self) -> list[str]:
        text = self.cleaned_data.get("groups", "")
        parts = [p.strip() for line in text.splitlines() for p in line.split(",")]
        return [p for p in parts if p]


class LocalLoginForm(DashboardForm):
    local_login_enabled = forms.BooleanField(required=False)

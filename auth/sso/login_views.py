"""The dashboard's sign-in page: "Sign in with <org> SSO" links for every enabled IdP, and the
password form with its two rules:

- an account with a TOTP factor (break-glass) must give a valid one-time code;
- a user of an organisation whose password sign-in is off is refused unless the account
  has a TOTP factor (break-glass), so admins get in when the IdP is down.

With ``?org=<slug>`` of an organisation whose password sign-in is off, the password form is
folded away behind "Break-glass sign-in"."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError

from auth.login_throttle import login_locked
from auth.models import Organisation, OrgMembership, TeamMembership
from auth.sso.models import IdentityProvider, TotpDevice
from auth.sso.totp import totp_verify
from auth.sso.urls_sp import sp_login_url


def _local_login_blocked(user: Any) -> bool:
    """The user belongs to an organisation whose password sign-in is off."""
    if getattr(user, "is_superuser", False):
        return False
    off = Organisation.objects.filter(local_login_enabled=False)
    return (
        OrgMembership.objects.filter(user_id=user.pk, organisation__in=off).exists()
        or TeamMembership.objects.filter(user_id=user.pk, team__organisation__in=off).exists()
    )


class GatewayLoginForm(AuthenticationForm):
    otp = forms.CharField(
        label="One-time code",
        required=False,
        max_length=12,
        help_text="Only for break-glass accounts: the 6-digit code of your authenticator.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "otp": "The one-time code is missing, wrong or already used.",
        "local_off": "Password sign-in is off for your organisation: use its single sign-on "
        "button (break-glass accounts need their one-time code).",
        "throttled": "Too many failed sign-ins for this account or from this address: "
        "sign-in is paused for a while. Try again later.",
    }

    def clean(self) -> dict[str, Any]:
        # Locked out (auth/login_throttle.py): refused before the password is even checked.
        username = self.cleaned_data.get("username")
        if username and login_locked(self.request, username):
            user_login_failed.send(
                sender=__name__,
                credentials={"username": username, "reason": "throttled"},
                request=self.request,
            )
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        return super().clean()

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        device = TotpDevice.objects.filter(user=user).first()
        if device is None:
            if _local_login_blocked(user):
                self._failed(user, "local_login_off")
                raise ValidationError(self.error_messages["local_off"], code="local_off")
            return
        if not totp_verify(device, self.cleaned_data.get("otp", "")):
            self._failed(user, "totp")
            raise ValidationError(self.error_messages["otp"], code="otp")

    def _failed(self, user: Any, reason: str) -> None:
        # The audit receiver records it like a wrong password (username, never the code).
        user_login_failed.send(
            sender=__name__,
            credentials={"username": user.get_username(), "reason": reason},
            request=self.request,
        )


class GatewayLoginView(auth_views.LoginView):
    template_name = "web/login.html"
    authentication_form = GatewayLoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        idps = IdentityProvider.objects.select_related("organisation").filter(enabled=True)
        context["sso_links"] = [
            {"name": idp.name, "org": idp.organisation.slug,
             "url": sp_login_url(idp.organisation)}
            for idp in idps
        ]  # fmt: skip
        slug = self.request.GET.get("org", "")
        org = Organisation.objects.filter(slug=slug).first() if slug else None
        if org is not None:
            folded = not org.local_login_enabled
        else:
            # Every organisation signs in through SSO only: the form is for break-glass.
            orgs = Organisation.objects.all()
            folded = orgs.exists() and not orgs.filter(local_login_enabled=True).exists()
        context["password_folded"] = folded
        context["sso_org"] = org
        context["login_error"] = _error_sentence(context.get("form"))
        return context


def _error_sentence(form: Any) -> str:
    """Our policy refusals say why; a wrong password keeps Django's neutral sentence."""
    if form is None or not form.errors:
        return ""
    for error in form.non_field_errors().as_data():
        if error.code in ("otp", "local_off", "inactive", "throttled"):
            return " ".join(error.messages)
    return ""

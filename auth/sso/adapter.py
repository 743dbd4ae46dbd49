"""allauth adapters: no local signup; SSO sign-ins map groups to roles (refused when they
map to nothing: no account is created), JIT-create users and re-sync them at every sign-in;
authentication errors become our page and an audit entry."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.http import HttpRequest

from auth.sso.mapping import groups_from_attributes, resolve, rules_of
from auth.sso.models import IdentityProvider
from auth.sso.provider import REQUEST_ATTR
from auth.sso.provisioning import profile_from_attributes, user_deprovision, user_sync
from auth.sso.rejections import reject_page

RESULT_ATTR = "_aigateway_sso_result"


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False  # local accounts are made by admins; SSO accounts by JIT (below)


def _sso(request: HttpRequest) -> dict[str, Any]:
    return getattr(request, REQUEST_ATTR, None) or {}


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return True  # reached only after pre_social_login found a mapped role

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return True

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """Every SSO sign-in: groups (all values, from extra_data) → roles. Nothing mapped:
        refuse (an existing user also loses their roles in the organisation)."""
        idp: IdentityProvider | None = _sso(request).get("idp")
        if idp is None:  # not one of ours (no other providers are configured)
            raise ImmediateHttpResponse(reject_page(request, None, "Unknown sign-in.", "unknown"))
        attributes = sociallogin.account.extra_data or {}
        groups = groups_from_attributes(idp, attributes)
        result = resolve(rules_of(idp), groups)
        if not result.grants_anything:
            if sociallogin.is_existing:
                user_deprovision(user=sociallogin.user, idp=idp)
            raise ImmediateHttpResponse(
                reject_page(
                    request,
                    idp,
                    "Your account at the identity provider has no group that gives access to "
                    "this gateway. Ask an administrator to add you to one.",
                    "no_mapped_role",
                    status=403,
                    details={"groups": groups[:50], "uid": sociallogin.account.uid},
                    template="sso/no_access.html",
                )
            )
        setattr(request, RESULT_ATTR, result)
        if sociallogin.is_existing:
            if not sociallogin.user.is_active:
                raise ImmediateHttpResponse(
                    reject_page(request, idp, "This account is deactivated.", "inactive")
                )
            user_sync(user=sociallogin.user, idp=idp, result=result, attributes=attributes)

    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: Any) -> Any:
        user = super().populate_user(request, sociallogin, data)
        idp = _sso(request).get("idp")
        if idp is not None:
            for name, value in profile_from_attributes(
                idp, sociallogin.account.extra_data or {}
            ).items():
                setattr(user, name, value)
        return user

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form: Any = None) -> Any:
        """JIT: the new user gets the mapped roles in the IdP's organisation."""
        user = super().save_user(request, sociallogin, form)
        idp = _sso(request).get("idp")
        result = getattr(request, RESULT_ATTR, None)
        if idp is not None and result is not None:
            user_sync(
                user=user, idp=idp, result=result, attributes=sociallogin.account.extra_data or {}
            )
        return user

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: Any = None,
        exception: Any = None,
        extra_context: Any = None,
    ) -> None:
        """python3-saml's refusals (signature, audience, time, ...) and allauth's (unknown
        state): our page, 403, audited."""
        extra = extra_context or {}
        reason = str(extra.get("saml_last_error_reason") or error or "unknown")
        idp = IdentityProvider.objects.filter(
            social_app_id=getattr(provider.app, "pk", None)
        ).first()
        raise ImmediateHttpResponse(
            reject_page(
                request,
                idp,
                "The identity provider's answer could not be accepted.",
                "saml_error",
                details={"errors": list(extra.get("saml_errors") or []), "reason": reason[:500]},
            )
        )

"""allauth's SAML provider with the gateway's rules (SOCIALACCOUNT_PROVIDERS["saml"]
["provider_class"]):

- the SP entity id and ACS URL come from AIGATEWAY_SAML_SP_BASE_URL, not the Host header;
- the strict settings are applied whatever the stored SocialApp row says;
- a response python3-saml accepted still passes ``validation.check_response`` and the replay
  cache, and IdP-initiated responses are refused unless the IdP allows them;
- a disabled IdP signs nobody in.
Refusals raise ``SAMLRejected``; the finish view wrapper (views.py) renders and audits them."""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.providers.saml.provider import SAMLProvider
from django.http import HttpRequest, HttpResponseRedirect
from onelogin.saml2.auth import OneLogin_Saml2_Auth

from auth.sso.models import IdentityProvider
from auth.sso.saml_config import onelogin_settings, request_data, runtime_settings
from auth.sso.urls_sp import sp_acs_url, sp_entity_id
from auth.sso.validation import SAMLRejected, check_response, remember_once

# Set on the request for the adapter and the sign-in audit (what the response said).
REQUEST_ATTR = "_aigateway_sso"


class GatewaySAMLProvider(SAMLProvider):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The app row was just read from the database for this request: overlaying its
        # settings in memory changes nothing stored.
        self.app.settings = runtime_settings(self.app.settings or {}, self.app.client_id)

    def gateway_idp(self) -> IdentityProvider:
        idp = (
            IdentityProvider.objects.select_related("organisation")
            .filter(social_app_id=self.app.pk)
            .first()
        )
        if idp is None or not idp.enabled:
            raise SAMLRejected("Single sign-on is switched off for this organisation.", "disabled")
        return idp

    def redirect(
        self,
        request: HttpRequest,
        process: Any,
        next_url: str | None = None,
        data: Any = None,
        **kwargs: Any,
    ) -> HttpResponseRedirect:
        """The AuthnRequest, with our explicit ACS URL and entity id."""
        idp = self.gateway_idp()
        auth = OneLogin_Saml2_Auth(request_data(request), onelogin_settings(idp))
        url = auth.login(return_to="")
        self.stash_redirect_state(
            request, process, next_url, data, state_id=auth.get_last_request_id(), **kwargs
        )
        return HttpResponseRedirect(url)

    def sociallogin_from_response(self, request: HttpRequest, response: Any) -> Any:
        auth: OneLogin_Saml2_Auth = response
        idp = self.gateway_idp()
        setattr(request, REQUEST_ATTR, {"idp": idp})
        slug = idp.organisation.slug
        remaining = check_response(auth, acs_url=sp_acs_url(slug), entity_id=sp_entity_id(slug))
        if not auth.get_last_response_in_response_to() and not idp.allow_idp_initiated:
            raise SAMLRejected(
                "Sign-in started at the IdP is switched off for this organisation: start at "
                "the gateway's sign-in page.",
                "idp_initiated",
            )
        remember_once(
            issuer=idp.entity_id,
            ids={"assertion": auth.get_last_assertion_id(), "response": auth.get_last_message_id()},
            ttl_seconds=remaining,
        )
        if idp.uid_attribute and not auth.get_attribute(idp.uid_attribute):
            # Falling back to the NameID would give this person another account.
            raise SAMLRejected(
                f"The response lacks the user id attribute ({idp.uid_attribute}).", "no_uid"
            )
        setattr(
            request,
            REQUEST_ATTR,
            {
                "idp": idp,
                "name_id": auth.get_nameid(),
                "name_id_format": auth.get_nameid_format(),
                "session_index": auth.get_session_index(),
                "session_expiration": auth.get_session_expiration(),
                "attributes": auth.get_attributes(),
            },
        )
        return super().sociallogin_from_response(request, auth)

"""The SP's endpoints around allauth's SAML views (auth/sso/urls_accounts.py):

- ``/acs/finish/`` wraps allauth's finish view: our refusals (SAMLRejected) and an unknown
  or reused InResponseTo get our page and an audit entry; malformed XML, a DTD, or truncated
  XML inside the base64 (python3-saml raises, allauth does not catch) get a 400 page, never a
  500;
- ``/login/`` wraps allauth's confirm-and-redirect view (a disabled IdP is refused);
- ``/metadata/`` is ours: the SP metadata with the explicit entity id and ACS URL;
- ``/accounts/logout/`` signs out locally and, where the IdP has an SLO URL, sends a
  LogoutRequest to it (SP-initiated SLO)."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.providers.saml import views as saml_views
from allauth.socialaccount.sessions import LoginSession
from django.conf import settings
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_Error
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from auth.sso.csp import allow_form_action
from auth.sso.models import IdentityProvider
from auth.sso.rejections import reject_page
from auth.sso.saml_config import onelogin_settings, request_data
from auth.sso.session import SESSION_KEY
from auth.sso.validation import SAMLRejected

# What python3-saml raises on input it cannot parse (DTDForbidden & co. are ValueErrors).
# A second net: finish_acs refuses such posts before allauth's view runs.
MALFORMED = (etree.Error, ValueError, UnicodeError, binascii.Error)
logger = logging.getLogger(__name__)


def _idp_for_slug(slug: str) -> IdentityProvider | None:
    return (
        IdentityProvider.objects.select_related("organisation")
        .filter(social_app__client_id=slug)
        .first()
    )


def _guarded(view: Any, request: HttpRequest, slug: str) -> HttpResponse:
    try:
        return view(request, organization_slug=slug)
    except ImmediateHttpResponse as exc:
        return exc.response
    except SAMLRejected as exc:
        return reject_page(request, _idp_for_slug(slug), exc.reason, exc.code)
    except PermissionDenied:
        return reject_page(
            request,
            _idp_for_slug(slug),
            "This sign-in response does not belong to a sign-in started in this browser, or it "
            "was used already. Start again from the sign-in page.",
            "unknown_in_response_to",
        )
    except OneLogin_Saml2_Error as exc:
        # Raised before any response is read: our stored settings are unusable.
        return reject_page(
            request,
            _idp_for_slug(slug),
            "Single sign-on is misconfigured for this organisation; an administrator has to "
            "check its identity provider settings.",
            "misconfigured",
            status=503,
            details={"error": str(exc)[:300]},
        )
    except MALFORMED as exc:
        logger.warning("SAML response refused as malformed: %s", type(exc).__name__)
        return _malformed(request, slug, type(exc).__name__)


def _malformed(request: HttpRequest, slug: str, why: str) -> HttpResponse:
    return reject_page(
        request,
        _idp_for_slug(slug),
        "The sign-in response is not a well-formed SAML message.",
        "malformed",
        status=400,
        details={"error": why},
        template="sso/bad_request.html",
    )


def _posted_response_problem(request: HttpRequest) -> str | None:
    """Why the SAMLResponse that /acs/ stored for this browser cannot be a SAML response
    (not base64, not well-formed XML, a DTD or entities, not a samlp:Response), or None.
    Checked before allauth's view, which answers bad base64 like a bad signature and lets
    XML errors through as a 500."""
    store = LoginSession(request, "saml_acs_session", "saml-acs-session").store
    stored = store.get("request")
    if not stored:
        return None  # allauth's view refuses a finish without a posted response
    try:
        posted = QueryDict(json.loads(stored).get("POST", "")).get("SAMLResponse", "")
        xml = base64.b64decode("".join(posted.split()), validate=True)
        root = OneLogin_Saml2_XML.to_etree(xml)
    except (binascii.Error, ValueError, TypeError, etree.Error) as exc:
        return type(exc).__name__
    if root.tag != f"{{{OneLogin_Saml2_Constants.NS_SAMLP}}}Response":
        return "not a samlp:Response"
    return None


def finish_acs(request: HttpRequest, organization_slug: str) -> HttpResponse:
    problem = _posted_response_problem(request)
    if problem is not None:
        LoginSession(request, "saml_acs_session", "saml-acs-session").delete()
        return _malformed(request, organization_slug, problem)
    return _guarded(saml_views.finish_acs, request, organization_slug)


def login(request: HttpRequest, organization_slug: str) -> HttpResponse:
    response = _guarded(saml_views.login, request, organization_slug)
    if request.method == "GET" and response.status_code == 200:
        # The confirm page's form is answered with a redirect to the IdP (form-action).
        idp = _idp_for_slug(organization_slug)
        if idp is not None:
            allow_form_action(response, [idp.sso_url])
    return response


def metadata(request: HttpRequest, organization_slug: str) -> HttpResponse:
    idp = _idp_for_slug(organization_slug)
    if idp is None or not idp.enabled:
        raise Http404("no such identity provider")
    saml_settings = OneLogin_Saml2_Settings(onelogin_settings(idp), sp_validation_only=True)
    return HttpResponse(saml_settings.get_sp_metadata(), content_type="text/xml")


@csrf_exempt  # the IdP redirects the browser here; python3-saml checks the message
def sls(request: HttpRequest, organization_slug: str) -> HttpResponse:
    try:
        response = _guarded(saml_views.sls, request, organization_slug)
        if response.status_code == 400 and response.get("Content-Type", "").startswith(
            "text/plain"
        ):
            # allauth answers an invalid logout message with its reason as plain text.
            return reject_page(
                request,
                _idp_for_slug(organization_slug),
                "The identity provider's logout message could not be accepted.",
                "slo_invalid",
                status=400,
                template="sso/bad_request.html",
            )
        return response
    except Exception as exc:  # noqa: BLE001  (any SLO failure: the user is signed out locally)
        logger.warning("SAML single logout failed (%s); signed out locally", type(exc).__name__)
        logout(request)
        return redirect(settings.LOGOUT_REDIRECT_URL)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Local sign-out, then SP-initiated SLO at the IdP when it has an SLO URL."""
    info = request.session.get(SESSION_KEY) if request.user.is_authenticated else None
    logout(request)
    done = reverse(settings.LOGOUT_REDIRECT_URL)
    if not info:
        return HttpResponseRedirect(done)
    idp = IdentityProvider.objects.select_related("organisation").filter(pk=info.get("idp")).first()
    if idp is None or not idp.slo_url or not idp.enabled:
        return HttpResponseRedirect(done)
    auth = OneLogin_Saml2_Auth(request_data(request), onelogin_settings(idp))
    url = auth.logout(
        return_to=request.build_absolute_uri(done),
        name_id=info.get("name_id") or None,
        session_index=info.get("session_index") or None,
        name_id_format=info.get("name_id_format") or None,
    )
    return HttpResponseRedirect(url)

"""next= through the SAML sign-in: allauth keeps it across the IdP round trip and must
only ever send the browser back to a page of this site."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest

from tests.security.test_web_security import EVIL_NEXT
from tests.sso_unit.conftest import _sp_base_url, idp, sso  # noqa: F401  (fixtures)
from tests.sso_unit.saml_support import authn_request_id, build_response


def _sign_in_with_next(sso, next_url: str):  # noqa: F811
    login = f"/accounts/saml/{sso.org_slug}/login/?next={quote(next_url)}"
    assert sso.client.get(login).status_code == 200
    sent = sso.client.post(login)
    assert sent.status_code == 302 and sent["Location"].startswith(sso.sso_url)
    request_id = authn_request_id(sent["Location"])
    return sso.post(build_response(sso.assertion(request_id)))


@pytest.mark.django_db
@pytest.mark.parametrize("next_url", EVIL_NEXT)
def test_sso_sign_in_never_follows_an_off_site_next(idp, sso, next_url):  # noqa: F811
    finished = _sign_in_with_next(sso, next_url)
    assert finished.status_code == 302, finished.content[:300]
    location = finished["Location"]
    parts = urlsplit(location)
    assert parts.netloc in ("", "testserver") and parts.scheme in ("", "http"), location
    assert not location.startswith(("//", "/\\")), location
    assert sso.client.get("/").status_code == 200  # signed in all the same


@pytest.mark.django_db
def test_sso_sign_in_follows_a_local_next(idp, sso):  # noqa: F811
    assert _sign_in_with_next(sso, "/audit/")["Location"] == "/audit/"

"""SSO in a real browser: headless Chromium follows the gateway's SSO entry, the IdP's own
sign-in form and its auto-posting form, and lands signed in on the dashboard."""

from __future__ import annotations

import pytest

from tests.sso.conftest import UID_ANN, SsoWorld
from tests.sso.support import memberships, sso_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_user_signs_in_through_the_idp_in_a_browser(page, sso: SsoWorld) -> None:
    page.goto("/login/")
    page.locator(f'a[href^="/accounts/saml/{sso.acme.slug}/login/"]').click()
    # allauth's confirm page: one button that sends the browser to the IdP.
    page.locator("main form[method=post] button").click()
    page.wait_for_url(lambda url: url.startswith(sso.acme.idp.base_url))
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill(sso.acme.password("ann"))
    page.get_by_role("button", name="Sign in").click()
    # The IdP's page posts itself to the gateway's ACS, which finishes at the dashboard.
    page.wait_for_url(sso.gateway.base_url + "/")
    assert page.get_by_role("navigation", name="Main").is_visible()
    user = sso_user(sso.acme.idp.entity_id, UID_ANN)
    assert user is not None
    assert memberships(user)["team"] == {("acme/research", "member")}
    assert page.console_errors == []

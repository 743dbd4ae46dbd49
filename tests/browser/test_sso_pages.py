"""The SSO pages (auth/sso) in Chromium: the preview works through htmx, the sign-in page
offers SSO, no console errors; screenshots for the docs (docs/screenshots/sso-*.png)."""

from __future__ import annotations

import pytest

from auth.sso.services import idp_create, mapping_rule_create
from tests.browser.conftest import save_screenshot, sign_in
from tests.sso_unit.saml_support import IDP_ENTITY_ID, IDP_SSO_URL, keypair


@pytest.mark.django_db(transaction=True)
def test_an_admin_previews_mapping_rules_and_the_login_page_offers_sso(
    page,
    cast,
    settings,
) -> None:
    settings.AIGATEWAY_SAML_SP_BASE_URL = "https://gateway.example.com"
    idp = idp_create(
        actor=None, organisation=cast.org, entity_id=IDP_ENTITY_ID, sso_url=IDP_SSO_URL,
        x509cert=keypair().cert_body, name_attribute="displayName",
    )  # fmt: skip
    mapping_rule_create(actor=None, idp=idp, value="gw-admins", role="platform_admin")
    mapping_rule_create(actor=None, idp=idp, value="research", role="member", team=cast.team)
    sign_in(page, "alice", "pw-alice-secret")
    page.get_by_role("link", name="SSO").click()
    page.wait_for_url("**/sso/")
    page.get_by_role("link", name="Acme").click()
    page.get_by_label("Groups to try").fill("research\nsomething-else")
    page.get_by_role("button", name="Preview").click()
    result = page.locator("#preview-result")
    result.get_by_text("Team Research").wait_for()
    assert "/preview/" not in page.url  # htmx swapped the fragment in place
    save_screenshot(page, "sso-idp")
    assert page.console_errors == []
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")
    assert page.get_by_role("link", name="Sign in with Acme SSO").is_visible()
    save_screenshot(page, "sso-login")

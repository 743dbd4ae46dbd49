"""In a real browser: alice adds a provider pointing at a fake upstream, tests the connection,
adds a credential, creates a route with a deployment on it; then the official `openai` SDK
gets an answer through the gateway on that route with a team key."""

from __future__ import annotations

import re

import openai
import pytest
from playwright.sync_api import expect

from aigateway.routing.models import Route
from tests.browser.conftest import add_provider_and_test_connection, save_screenshot, sign_in
from tests.factories import make_key
from tests.fakes.upstream import FakeUpstream
from tests.web.gateway_config_support import make_admin_of_every_organisation

SECRET = "sk-browser-provider-key-0001"
NEXT_SECRET = "sk-browser-provider-key-0002"


@pytest.mark.django_db(transaction=True)
def test_alice_adds_a_provider_and_a_route_and_the_sdk_uses_them(page, cast, live_gateway):
    # Providers and routes serve every organisation: alice edits them as a platform admin of
    # every organisation (aigateway/web/permissions.py).
    make_admin_of_every_organisation(cast)
    with FakeUpstream() as upstream:
        sign_in(page, "alice", "pw-alice-secret")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Providers").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Providers and credentials")

        result = add_provider_and_test_connection(page, "fake-upstream", upstream.openai_base_url)
        expect(result).to_contain_text("OK")
        expect(result).to_contain_text("Connected: the provider listed its models.")

        add = page.locator("form[action$='/credentials/']")
        add.get_by_label("Credential name").fill("primary")
        add.get_by_label("Secret").fill(SECRET)
        add.get_by_role("button", name="Add credential").click()
        expect(page.get_by_role("status").first).to_contain_text("Added the credential primary")
        expect(page.locator("table.credentials")).to_contain_text("sk-…0001")
        page.get_by_role("button", name="Test connection").click()
        expect(page.locator("#connection-result")).to_contain_text("primary (sk-…0001)")
        assert upstream.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
        assert SECRET not in page.content()

        rotate = page.locator("form[action$='/rotate/']")
        rotate.get_by_label("Credential name").fill("next")
        rotate.get_by_label("Secret").fill(NEXT_SECRET)
        rotate.get_by_role("button", name="Verify and rotate").click()
        expect(page.get_by_role("status").first).to_contain_text("Rotated to next")
        credentials = page.locator("table.credentials")
        expect(credentials.locator("tr", has_text="primary")).to_contain_text("Retiring")
        expect(credentials.locator("tr", has_text="next")).to_contain_text("Active")
        assert upstream.requests[-1].headers["authorization"] == f"Bearer {NEXT_SECRET}"
        assert NEXT_SECRET not in page.content()
        save_screenshot(page, "providers")

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Routes").click()
        page.get_by_label("Name", exact=True).fill("browser-route")
        page.get_by_label("Description").fill("Made in the browser")
        page.get_by_role("button", name="Create route").click()
        expect(page).to_have_url(re.compile(r"/routes/\d+/$"))
        page.get_by_label("Provider").select_option(label="fake-upstream")
        page.get_by_label("Upstream model").fill("gpt-fake")
        page.get_by_role("button", name="Add deployment").click()
        deployments = page.locator("table.deployments")
        expect(deployments).to_contain_text("gpt-fake")
        expect(deployments.locator("[id^=health-]").first).to_contain_text("closed")
        save_screenshot(page, "routes")
        assert page.console_errors == []

        route = Route.objects.get(name="browser-route")
        issued = make_key(cast.team, route)
        with openai.OpenAI(
            base_url=live_gateway.openai_base_url, api_key=issued.raw_key, max_retries=0, timeout=10
        ) as sdk:
            raw = sdk.chat.completions.with_raw_response.create(
                model="browser-route", messages=[{"role": "user", "content": "Hello"}]
            )
        assert raw.parse().choices[0].message.content
        assert raw.headers["x-aigateway-served-by"] == "fake-upstream/gpt-fake"
        assert upstream.requests[-1].json["model"] == "gpt-fake"
        assert upstream.requests[-1].headers["authorization"] == f"Bearer {NEXT_SECRET}"

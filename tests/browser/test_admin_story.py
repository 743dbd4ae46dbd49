"""One continuous story in a real browser (Debian's Chromium, headless), against the real
gateway and a real fake upstream, as a fresh single-company admin lives it:

sign in → add a provider pointing at the fake upstream → test the connection → add a
credential (masked, never shown raw) → create a route with deployments on that provider →
create a team → issue a key (shown once) and call the gateway with it through the official
`openai` SDK → force the primary deployment's breaker open (confirmation and reason), see it
in the list, and see the next call fail over → find every one of those steps in the audit log
with the page's own filters.

Olivia is platform admin of the only organisation, so she answers for every organisation:
she edits providers and routes, forces breakers and reads the gateway-wide audit events
(aigateway/web/permissions.py, aigateway/audit/search.py).
"""

from __future__ import annotations

import re

import openai
import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from auth.models import Organisation, OrgMembership, OrgRole
from tests.browser.conftest import add_provider_and_test_connection, save_screenshot, sign_in
from tests.fakes.upstream import FakeUpstream

SECRET = "sk-story-provider-key-0001"
PASSWORD = "pw-olivia-story-secret"
REASON = "Provider maintenance window, ticket OPS-42"


def _nav(page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def _audit_filter(page, action: str, actor: str = "olivia") -> object:
    """Filter the audit log with its form; returns the table once every row shown is
    ``action`` (the htmx swap has happened)."""
    page.get_by_label("Action").fill(action)
    page.get_by_label("Actor").fill(actor)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_function(
        """(action) => {
            const cells = [...document.querySelectorAll('#audit-table tbody tr td:nth-child(3)')];
            return cells.length > 0 && cells.every(c => c.textContent.trim() === action);
        }""",
        arg=action,
    )
    return page.locator("#audit-table tbody")


@pytest.mark.django_db(transaction=True)
def test_a_fresh_admin_sets_up_the_gateway_and_finds_every_step_in_the_audit_log(
    page, live_gateway
) -> None:
    company = Organisation.objects.create(slug="initech", name="Initech")
    olivia = get_user_model().objects.create_user("olivia", "olivia@example.test", PASSWORD)
    OrgMembership.objects.create(user=olivia, organisation=company, role=OrgRole.PLATFORM_ADMIN)

    with FakeUpstream() as upstream:
        # -- sign in through the login page --------------------------------------------
        sign_in(page, "olivia", PASSWORD)
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()

        # -- a provider pointing at the fake upstream, and its connection test ----------
        _nav(page, "Providers")
        result = add_provider_and_test_connection(page, "fake-upstream", upstream.openai_base_url)
        expect(result).to_contain_text("Connected: the provider listed its models.")
        assert upstream.requests[-1].path == "/v1/models"

        # -- a credential: stored, shown masked, never raw ------------------------------
        add = page.locator("form[action$='/credentials/']")
        add.get_by_label("Credential name").fill("primary")
        add.get_by_label("Secret").fill(SECRET)
        add.get_by_role("button", name="Add credential").click()
        expect(page.get_by_role("status").first).to_contain_text("Added the credential primary")
        expect(page.locator("table.credentials")).to_contain_text("sk-…0001")
        assert SECRET not in page.content()
        page.get_by_role("button", name="Test connection").click()
        expect(page.locator("#connection-result")).to_contain_text("primary (sk-…0001)")
        assert upstream.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
        assert SECRET not in page.content()

        # -- a route served by two deployments of that provider -------------------------
        _nav(page, "Routes")
        page.get_by_label("Name", exact=True).fill("story")
        page.get_by_label("Description").fill("The story's route")
        page.get_by_role("button", name="Create route").click()
        expect(page).to_have_url(re.compile(r"/routes/\d+/$"))
        for model in ("gpt-primary", "gpt-backup"):
            page.get_by_label("Provider").select_option(label="fake-upstream")
            page.get_by_label("Upstream model").fill(model)
            page.get_by_role("button", name="Add deployment").click()
            expect(page.get_by_role("status").first).to_contain_text(f"Added fake-upstream:{model}")
        deployments = page.locator("table.deployments")
        expect(deployments.locator("tbody tr")).to_have_count(2)
        expect(deployments.locator("tbody tr").first).to_contain_text("gpt-primary")

        # -- a team that may call it ----------------------------------------------------
        _nav(page, "Teams & keys")
        page.get_by_label("Organisation").select_option("initech")
        page.get_by_label("Name", exact=True).fill("Story team")
        page.get_by_label("Slug").fill("story-team")
        page.get_by_label("story", exact=True).check()
        page.get_by_role("button", name="Create team").click()
        page.wait_for_url(re.compile(r"/teams/\d+/$"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Story team")

        # -- a key, shown once, that works with the official SDK ------------------------
        page.get_by_label("Key name").fill("story-key")
        page.get_by_role("button", name="Issue key").click()
        raw_key = page.locator("#new-key-secret").input_value()
        assert raw_key.startswith("agw-")
        sdk = openai.OpenAI(
            base_url=live_gateway.openai_base_url, api_key=raw_key, max_retries=0, timeout=10
        )
        answer = sdk.chat.completions.with_raw_response.create(
            model="story", messages=[{"role": "user", "content": "Hello"}]
        )
        assert answer.parse().choices[0].message.content == "Echo from gpt-primary: Hello"
        assert answer.headers["x-aigateway-served-by"] == "fake-upstream/gpt-primary"
        assert upstream.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
        # Load the address again (/teams/<id>/keys/: it leads back to the team). A browser
        # "reload" of this page would re-send the POST that issued the key.
        page.goto(page.url)
        page.wait_for_url(re.compile(r"/teams/\d+/$"))
        assert raw_key not in page.content()
        expect(page.get_by_text(raw_key[:12] + "…")).to_be_visible()

        # -- force the primary deployment's breaker open ---------------------------------
        _nav(page, "Breakers")
        row = page.locator("tbody tr", has_text="fake-upstream:gpt-primary")
        expect(row.locator("[id^=breaker-state-]")).to_have_text("closed")
        row.get_by_text("Change…").click()
        row.get_by_label("Reason").fill(REASON)
        row.get_by_role("button", name="Force open").click()
        # The browser itself refuses without the confirmation (a required checkbox).
        assert row.get_by_label("I understand this changes live traffic").evaluate(
            "box => !box.checkValidity()"
        )
        row.get_by_label("I understand this changes live traffic").check()
        row.get_by_role("button", name="Force open").click()
        expect(page.get_by_role("status").first).to_contain_text("closed → forced_open")
        row = page.locator("tbody tr", has_text="fake-upstream:gpt-primary")
        expect(row.locator("[id^=breaker-state-]")).to_have_text("forced_open")
        expect(
            page.locator("tbody tr", has_text="fake-upstream:gpt-backup").locator(
                "[id^=breaker-state-]"
            )
        ).to_have_text("closed")
        expect(page.locator("#breaker-history")).to_contain_text(REASON)
        # The live refresh (every 5 s) swaps state cells only: a half-typed reason stays.
        backup = page.locator("tbody tr", has_text="fake-upstream:gpt-backup")
        backup.get_by_text("Change…").click()
        backup.get_by_label("Reason").fill("Half-typed reason")
        with page.expect_response(lambda r: "/breakers/fragment/" in r.url) as polled:
            pass
        assert polled.value.status == 200
        page.wait_for_timeout(200)  # let htmx swap what it received
        expect(backup.get_by_label("Reason")).to_have_value("Half-typed reason")
        save_screenshot(page, "breakers")

        # The next call skips the open breaker and fails over, without touching it.
        calls = len(upstream.requests)
        failed_over = sdk.chat.completions.with_raw_response.create(
            model="story", messages=[{"role": "user", "content": "Again"}]
        )
        assert failed_over.parse().choices[0].message.content == "Echo from gpt-backup: Again"
        assert failed_over.headers["x-aigateway-served-by"] == "fake-upstream/gpt-backup"
        assert [r.json["model"] for r in upstream.requests[calls:]] == ["gpt-backup"]
        sdk.close()

        # -- every step is in the audit log, found with the page's filters ---------------
        _nav(page, "Audit log")
        expected = {
            "provider.created": "fake-upstream",
            "credential.created": "fake-upstream/primary",
            "route.created": "story",
            "deployment.created": "story → fake-upstream:gpt-primary",
            "team.created": "initech/story-team",
            "api_key.created": "story-key",
            "breaker.open": "story → fake-upstream:gpt-primary",
        }
        for action, target in expected.items():
            table = _audit_filter(page, action)
            expect(table).to_contain_text(target)
        expect(table.locator("tr")).to_have_count(1)
        table.locator("tr").first.get_by_role("link").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("breaker.open")
        expect(page.locator("pre")).to_contain_text(REASON)
        expect(page.locator("pre")).to_contain_text("forced_open")
        page.go_back()
        table = _audit_filter(page, "deployment.created")
        expect(table).to_contain_text("story → fake-upstream:gpt-backup")

    assert page.console_errors == []

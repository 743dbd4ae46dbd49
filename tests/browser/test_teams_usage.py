"""In a real browser: alice creates a team, adds carol, issues a key (shown once), revokes it,
finds all of it in the audit log, and opens Usage and the overview, whose charts draw with no
console error. Saves the screenshots of docs/dashboard.md."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from aigateway.routing.models import Route
from tests.browser.conftest import save_screenshot, sign_in
from tests.web.dashboard_support import usage


def _some_calls(cast) -> None:
    """60 calls over the last 7 hours and 30 over the three weeks before."""
    Route.objects.create(name="smart")
    Route.objects.create(name="fast")
    now = timezone.now()
    for i in range(90):
        ago = timedelta(minutes=7 * i + 1) if i < 60 else timedelta(days=i - 60, hours=i % 5 + 1)
        usage(team=cast.team, user=cast.carol if i % 3 else cast.bob,
              created_at=now - ago, latency_ms=40.0 + 9 * (i % 17) + (i % 13) ** 2,
              status_code=500 if i % 11 == 0 else 200, cache_status="HIT" if i % 4 == 0 else "",
              input_tokens=200 + i, output_tokens=80, cost_usd=Decimal("0.0031"),
              route="smart" if i % 2 else "fast")  # fmt: skip


def _chart_drawn(page, selector: str) -> bool:
    return page.evaluate(
        "(s) => { const c = document.querySelector(s); return !!(c && window.Chart"
        " && window.Chart.getChart(c)); }",
        selector,
    )


@pytest.mark.django_db(transaction=True)
def test_alice_manages_a_team_and_finds_it_in_audit_usage_and_overview(page, cast) -> None:
    _some_calls(cast)
    sign_in(page, "alice", "pw-alice-secret")

    # Create a team.
    page.get_by_role("link", name="Teams & keys").click()
    page.get_by_label("Organisation").select_option("acme")
    page.get_by_label("Name", exact=True).fill("Platform")
    page.get_by_label("Slug").fill("platform")
    page.get_by_label("smart").check()
    page.get_by_role("button", name="Create team").click()
    page.wait_for_url(re.compile(r"/teams/\d+/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Platform"

    # Add carol as a member.
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Add member").click()
    assert page.get_by_text("Added carol as Member.").is_visible()
    assert page.get_by_role("cell", name="carol", exact=True).is_visible()

    # Issue a key: the secret is on this page only, focused for copying.
    page.get_by_label("Key name").fill("notebook")
    page.get_by_role("button", name="Issue key").click()
    secret = page.locator("#new-key-secret").input_value()
    assert secret.startswith("agw-")
    assert page.evaluate("document.activeElement.id") == "new-key-secret"
    page.goto(page.url)  # a second view (the address is /keys/: it leads back to the team)
    page.wait_for_url(re.compile(r"/teams/\d+/$"))
    assert secret not in page.content()
    assert page.get_by_text(secret[:12] + "…").is_visible()

    # Revoke it (after a confirmation page).
    page.get_by_role("link", name="Revoke the key notebook").click()
    page.get_by_role("button", name="Revoke key").click()
    assert page.get_by_text("Revoked the key notebook").is_visible()
    save_screenshot(page, "teams")

    # Everything is in the audit log.
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Action").fill("api_key.")
    page.get_by_role("button", name="Filter").click()
    table = page.locator("#audit-table")
    table.get_by_text("api_key.revoked").wait_for()
    assert table.get_by_text("api_key.created").is_visible()
    page.goto("/audit/")
    for action in ("team.created", "team_member.added", "api_key.created", "api_key.revoked"):
        assert page.locator("#audit-table td", has_text=action).count() >= 1, action
    save_screenshot(page, "audit")

    # Usage: chart, totals and calls.
    page.get_by_role("link", name="Usage").click()
    page.wait_for_function("() => window.Chart !== undefined")
    assert _chart_drawn(page, 'canvas[data-chart="daily"]')
    assert page.locator("#usage-calls tbody tr").count() == 50
    page.get_by_label("Route").fill("fast")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"/usage/\?.*route=fast"))
    assert page.locator("#usage-calls tbody tr").count() == 45
    page.wait_for_function(
        "() => { const c = document.querySelector('canvas[data-chart=\"daily\"]');"
        " return !!(c && Chart.getChart(c)); }"
    )
    save_screenshot(page, "usage")

    # Overview: the charts load with the page, and follow the period chosen.
    page.get_by_role("link", name="Overview").click()
    page.locator('canvas[data-chart="latency"]').wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-chart]')].every(c => Chart.getChart(c))"
    )
    assert page.locator("canvas[data-chart]").count() == 5
    save_screenshot(page, "overview")
    page.get_by_label("Last 30 days").check()
    page.wait_for_url(re.compile(r"\?period=month"))
    page.get_by_text("Last 30 days, per day (UTC).").wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-chart]')].every(c => Chart.getChart(c))"
    )
    assert page.locator("#overview-metrics dd").first.inner_text() == "90"
    assert page.console_errors == []

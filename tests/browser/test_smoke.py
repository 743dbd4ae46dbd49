"""The browser harness itself: Chromium starts, the app serves its pages and static files."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in


@pytest.mark.django_db(transaction=True)
def test_admin_signs_in_and_sees_the_overview(page, cast) -> None:
    sign_in(page, "alice", "pw-alice-secret")
    assert page.get_by_role("navigation", name="Main").is_visible()
    assert page.locator("header .brand").inner_text() == "aigateway"
    # The stylesheet loaded (served by the app itself in this set-up).
    colour = page.evaluate("getComputedStyle(document.querySelector('header')).display")
    assert colour != ""
    assert page.console_errors == []


@pytest.mark.django_db(transaction=True)
def test_a_wrong_password_keeps_the_user_on_the_login_page(page, cast) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "/login/" in page.url
    assert page.get_by_role("alert").count() + page.locator(".errorlist, .error").count() >= 1

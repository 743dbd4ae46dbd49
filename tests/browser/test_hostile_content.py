"""Stored hostile text in a real browser, under the real Content-Security-Policy: a team named
with markup and a model answer carrying script run nothing (no flag set, no dialog, no CSP
violation in the console), and the pages still work."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in
from tests.fakes.upstream import FakeUpstream
from tests.playground.support import UPSTREAM_KEY, build_world

TEAM_NAME = (
    "<script>window.__xss='team';alert(1)</script>\"><img src=x onerror=\"window.__xss='img';"
    'alert(2)"><svg onload=alert(3)>'
)
ANSWER = "<script>window.__xss='answer';alert(4)</script> <img src=x onerror=\"window.__xss=5\">"


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


def _inert(page, dialogs: list[str]) -> None:
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    hostile = (
        "main script:not([src]):not([type='application/json']), main img[src='x'], svg[onload]"
    )
    assert page.locator(hostile).count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_hostile_team_name_and_model_answer_run_no_script(page, cast, upstream):
    build_world(cast, upstream)
    cast.team.name = TEAM_NAME
    cast.team.save()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(page, "alice", "pw-alice-secret")
    for path in ("/teams/", f"/teams/{cast.team.pk}/", "/limits/", "/usage/"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        _inert(page, dialogs)
    page.goto("/teams/")
    assert TEAM_NAME in page.locator("main").inner_text()  # shown, as text

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "carol", "pw-carol-secret")
    page.goto("/playground/")
    page.get_by_label("Message 1", exact=True).fill(ANSWER)  # the fake echoes it back
    page.get_by_role("button", name="Send").click()
    page.locator(".pg-meta").wait_for(state="visible")
    assert ANSWER in page.locator(".pg-answer-text").inner_text()
    _inert(page, dialogs)
    assert page.console_errors == []  # nothing was even refused by the CSP: no markup at all

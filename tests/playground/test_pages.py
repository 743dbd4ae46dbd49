"""The playground's pages: who may open them, what they show, and the history's privacy:
a run is its author's alone (another user's id is a 404, also for re-running it); team
admins see members' metadata only, and only when the team's policy says so."""

from __future__ import annotations

import pytest
from django.test import Client

from aigateway.playground.models import PlaygroundRun
from auth.models import Team

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _run(user, team, text="a secret plan", answer="the hidden answer", route="fast"):
    return PlaygroundRun.objects.create(
        user=user, team=team, route=route,
        messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": text}],
        params={"temperature": 0.2, "max_tokens": 64}, answer=answer,
        meta={"request_id": "req_x", "input_tokens": 3, "output_tokens": 4,
              "cost_usd": "0.00000100", "cache": "MISS", "status": "ok"},
        search_text=f"sys\n{text}\n{answer}", request_id="req_x",
    )  # fmt: skip


def _team_with_routes(cast, *names):
    from aigateway.routing.models import Route

    for name in names:
        cast.team.allowed_routes.add(Route.objects.create(name=name))


def test_anonymous_users_are_sent_to_sign_in(cast):
    for url in ("/playground/", "/playground/history/", "/playground/runs/1/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_member_gets_the_form_with_the_teams_routes(cast):
    _team_with_routes(cast, "fast", "other")
    response = _client(cast.carol).get("/playground/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<option value="fast">fast</option>' in html
    assert 'id="pg-form"' in html and 'src="/static/js/playground.js"' in html
    teams = response.context["teams_data"]
    assert teams == [{"id": cast.team.pk, "label": "Acme / Research", "routes": ["fast", "other"]}]
    # The nav links here (no longer a "soon" placeholder).
    assert 'href="/playground/" aria-current="page">Playground</a>' in html
    assert "<script>" not in html  # no inline script (CSP): data travels in json_script


def test_a_user_in_several_teams_gets_a_team_selector(cast):
    from auth.models import TeamMembership

    second = Team.objects.create(organisation=cast.org, slug="ops", name="Ops")
    TeamMembership.objects.create(user=cast.carol, team=second)
    html = _client(cast.carol).get("/playground/").content.decode()
    assert '<select id="pg-team" name="team">' in html
    assert "Acme / Ops" in html and "Acme / Research" in html


def test_a_user_without_a_team_is_told_so(cast):
    response = _client(cast.alice).get("/playground/")  # platform admin, in no team
    assert response.status_code == 200
    html = response.content.decode()
    assert "You are not a member of any team yet" in html
    assert 'id="pg-form"' not in html


def test_history_lists_only_ones_own_runs_and_searches_them(cast):
    own = _run(cast.carol, cast.team, text="about llamas", answer="llamas are fine")
    _run(cast.carol, cast.team, text="about goats", answer="goats too")
    theirs = _run(cast.bob, cast.team, text="bob's llamas", answer="bob only")
    carol = _client(cast.carol)
    html = carol.get("/playground/history/").content.decode()
    assert "about llamas" in html and "about goats" in html and "bob&#x27;s llamas" not in html
    found = carol.get("/playground/history/", {"q": "LLAMAS"})
    assert [r.pk for r in found.context["runs"]] == [own.pk]
    assert theirs.pk not in [r.pk for r in found.context["runs"]]


def test_another_users_run_is_404_to_read_open_or_rerun(cast):
    run = _run(cast.carol, cast.team)
    for user in (cast.bob, cast.eve, cast.alice):
        client = _client(user)
        assert client.get(f"/playground/runs/{run.pk}/").status_code == 404
        assert client.get("/playground/", {"run": run.pk}).status_code == 404
        assert client.get("/playground/", {"run": run.pk, "autorun": "1"}).status_code == 404
    carol = _client(cast.carol)
    assert carol.get("/playground/", {"run": "99999999999999999999999"}).status_code == 404
    assert carol.get("/playground/", {"run": "x"}).status_code == 404


def test_the_owner_reopens_and_reruns_a_run(cast):
    _team_with_routes(cast, "fast")
    run = _run(cast.carol, cast.team)
    client = _client(cast.carol)
    detail = client.get(f"/playground/runs/{run.pk}/").json()
    assert detail["system"] == "sys"
    assert detail["messages"] == [{"role": "user", "content": "a secret plan"}]
    assert (detail["temperature"], detail["max_tokens"]) == (0.2, 64)
    page = client.get("/playground/", {"run": run.pk, "autorun": "1"})
    assert page.context["initial"]["autorun"] is True
    assert page.context["initial"]["answer"] == "the hidden answer"


def test_team_admins_see_no_member_runs_by_default(cast):
    _run(cast.carol, cast.team)
    response = _client(cast.bob).get("/playground/history/")
    assert response.context["team_runs"] == []
    assert "a secret plan" not in response.content.decode()


def test_team_admins_see_metadata_only_when_the_team_allows(cast):
    Team.objects.filter(pk=cast.team.pk).update(playground_history_visible_to_admins=True)
    _run(cast.carol, cast.team)
    response = _client(cast.bob).get("/playground/history/")
    rows = response.context["team_runs"]
    assert [row["user__username"] for row in rows] == ["carol"]
    assert set(rows[0]) == {"id", "user__username", "team__name", "route", "meta", "request_id",
                            "created_at"}  # fmt: skip
    html = response.content.decode()
    assert "carol" in html and "req_x" in html
    assert "a secret plan" not in html and "the hidden answer" not in html
    # A member (not an admin) of the same team sees nothing of the others'.
    _run(cast.bob, cast.team, text="bob's question")
    assert _client(cast.carol).get("/playground/history/").context["team_runs"] == []
    # Nor does an admin of another team.
    assert _client(cast.eve).get("/playground/history/").context["team_runs"] == []

"""Stored and reflected XSS: every page of the site (from the resolver, so new pages are
covered), opened by a platform admin over a world where every shown field holds markup that
would run script, shows that markup as text. The browser-side check (no script runs, no
dialog) is tests/browser/test_hostile_content.py."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

from aigateway.playground.models import PlaygroundRun
from tests.fakes.upstream import FakeUpstream
from tests.playground.support import (
    UPSTREAM_KEY,
    build_world,
    conversation,
    post_stream,
    signed_in,
    tokens_text,
)
from tests.security.web_support import RAW, build_hostile_world, hostile, shown_escaped, site_urls

# Reflected: query values that pages echo back (filters, search boxes, sign-in fields).
REFLECTED = {
    "/usage/": {"route": "qr", "provider": "qp", "user": "qu"},
    "/usage/results/": {"route": "qs"},
    "/audit/": {"action": "qa", "actor": "qb", "request_id": "qc"},
    "/login/": {"next": "qn", "org": "qo"},
    "/playground/history/": {"q": "qh"},
}

# GET signs the session out (single logout endpoints, sign-out).
SIGNS_OUT = {"sso_sls", "saml_sls", "sso_logout", "web:logout"}


def _pages(client: Client, world) -> dict[str, str]:
    pages = {}
    for path, url in site_urls(world.values):
        if url.methods is not None and "GET" not in url.methods:
            continue
        if url.name.startswith(("management:", "admin:")) or url.name in SIGNS_OUT:
            continue
        response = client.get(path)
        if response.get("Content-Type", "").startswith("text/html"):
            pages[path] = response.content.decode()
    return pages


@pytest.mark.django_db
def test_every_page_shows_stored_hostile_fields_as_text(cast):
    world = build_hostile_world(cast)
    client = Client()
    client.force_login(cast.alice)
    pages = _pages(client, world)
    pages["/login/ (SSO links)"] = Client().get("/login/?org=acme").content.decode()
    assert len(pages) >= 30, sorted(pages)
    leaked = {path: RAW.findall(html) for path, html in pages.items() if RAW.search(html)}
    assert leaked == {}
    everything = "\n".join(pages.values())
    not_shown = [name for name, tag in world.tags.items() if not shown_escaped(tag, everything)]
    assert not_shown == [], "fields this test stores but no page showed (test world is stale)"
    assert len(world.tags) >= 20


@pytest.mark.django_db
def test_query_values_reflected_in_pages_are_escaped(cast):
    build_hostile_world(cast)
    client = Client()
    client.force_login(cast.alice)
    reflected = 0
    for path, fields in REFLECTED.items():
        query = urlencode({name: hostile(tag) for name, tag in fields.items()})
        user = Client() if path == "/login/" else client
        html = user.get(f"{path}?{query}").content.decode()
        assert not RAW.search(html), path
        reflected += sum(shown_escaped(tag, html) for tag in fields.values())
    assert reflected >= 5


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def playground_world(cast, upstream):
    return build_world(cast, upstream)


@pytest.mark.django_db(transaction=True)
async def test_a_hostile_model_answer_is_text_when_the_run_is_reopened(playground_world):
    cast = playground_world.cast
    client = await signed_in(cast.carol)
    # The fake echoes the message: the model's answer carries the markup.
    status, events = await post_stream(client, conversation(cast.team, hostile("ma")))
    assert status == 200 and "<script>" in tokens_text(events)
    run = await PlaygroundRun.objects.aget(user=cast.carol)
    assert "<script>" in run.answer  # stored as the model said it
    for path in ("/playground/history/", f"/playground/?run={run.pk}"):
        html = (await client.get(path)).content.decode()
        assert not RAW.search(html), path
    reopened = (await client.get(f"/playground/?run={run.pk}")).content.decode()
    assert shown_escaped("ma", reopened)  # the answer, inside json_script, for playground.js

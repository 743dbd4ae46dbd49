"""What the stream endpoint refuses, and how it says so: one plain sentence (never a code or
a trace) with the right status: roles, foreign teams, routes, quotas, guardrails, providers."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from aigateway.guardrails.services import PolicyValues, policy_set
from aigateway.playground.models import PlaygroundRun
from aigateway.quotas.models import Limit
from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from tests.playground.support import (
    STREAM_URL,
    conversation,
    meta_of,
    post_stream,
    signed_in,
    upstream,
    world,
)

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["upstream", "world"]  # fixtures used by name


async def test_a_signed_out_browser_is_told_to_sign_in(world):
    status, body = await post_stream(AsyncClient(), conversation(world.cast.team))
    assert status == 401
    assert body["error"]["message"] == "Your session has ended: sign in again."


async def test_get_is_refused(world):
    client = await signed_in(world.cast.carol)
    response = await client.get(STREAM_URL)
    assert response.status_code == 405


async def test_a_route_the_team_may_not_use_is_403(world):
    client = await signed_in(world.cast.carol)
    status, body = await post_stream(client, conversation(world.cast.team, route="forbidden"))
    assert status == 403
    assert body["error"]["message"] == "Your team may not use the route 'forbidden'."
    assert world.upstream.requests == []


async def test_acting_for_a_team_one_is_not_in_is_403(world):
    """eve (sales, another organisation) names research's id: refused before anything runs."""
    client = await signed_in(world.cast.eve)
    status, body = await post_stream(client, conversation(world.cast.team))
    assert status == 403
    assert body["error"]["message"] == "You are not a member of this team."
    assert world.upstream.requests == []


async def test_an_auditor_without_a_team_membership_is_403(world):
    client = await signed_in(world.cast.dave)
    status, _ = await post_stream(client, conversation(world.cast.team))
    assert status == 403


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        ({"messages": []}, "Write a message to send."),
        ({"messages": [{"role": "assistant", "content": "hi"}]},
         "The conversation must end with a message from the user."),
        ({"messages": [{"role": "system", "content": "hi"}]},
         "Message 1 must be from the user or the assistant."),
        ({"temperature": 5}, "Temperature must be between 0 and 2."),
        ({"temperature": "warm"}, "Temperature must be a number."),
        ({"max_tokens": 0}, "Max tokens must be a whole number from 1 to 131072."),
        ({"max_tokens": 1.5}, "Max tokens must be a whole number from 1 to 131072."),
        ({"team": "x"}, "Choose a team."),
        ({"team": "9" * 40}, "Choose a team."),
        ({"route": ""}, "Choose a route."),
    ],
)  # fmt: skip
async def test_bad_input_is_400_with_a_sentence(world, change, sentence):
    client = await signed_in(world.cast.carol)
    status, body = await post_stream(client, {**conversation(world.cast.team), **change})
    assert (status, body["error"]["message"]) == (400, sentence)


async def test_a_body_that_is_not_json_is_400(world):
    client = await signed_in(world.cast.carol)
    response = await client.post(STREAM_URL, "{nope", content_type="application/json")
    assert response.status_code == 400
    assert json.loads(response.content)["error"]["message"] == "The request is not valid JSON."


async def test_an_exceeded_quota_says_when_it_resets(world):
    cast = world.cast
    await Limit.objects.acreate(scope="team", scope_id=cast.team.pk, kind="rpm", value=1)
    client = await signed_in(cast.carol)
    first, _ = await post_stream(client, conversation(cast.team))
    assert first == 200
    status, body = await post_stream(client, conversation(cast.team))
    assert status == 429
    message = body["error"]["message"]
    assert message.startswith("Quota exceeded: Limit reached for requests per minute on team")
    assert "It resets in " in message and " UTC on " in message
    assert body["error"]["request_id"].startswith("req_")


async def test_the_users_own_limit_applies(world):
    cast = world.cast
    await Limit.objects.acreate(scope="user", scope_id=cast.carol.pk, kind="rpm", value=1)
    carol, bob = await signed_in(cast.carol), await signed_in(cast.bob)
    assert (await post_stream(carol, conversation(cast.team)))[0] == 200
    assert (await post_stream(carol, conversation(cast.team)))[0] == 429
    assert (await post_stream(bob, conversation(cast.team)))[0] == 200  # bob's own budget


async def test_a_guardrail_block_is_a_sentence_naming_the_rule(world):
    cast = world.cast
    await sync_to_async(policy_set)(
        actor=None, scope="org", organisation=cast.org,
        values=PolicyValues(rules=[{"detect": "pii.card", "action": "block"}]),
    )  # fmt: skip
    client = await signed_in(cast.carol)
    status, body = await post_stream(client, conversation(cast.team, "pay 4111 1111 1111 1111"))
    assert status == 400
    message = body["error"]["message"]
    assert message.startswith("A guardrail blocked this request: guardrail rule 'pii.card'")
    assert "4111" not in message
    assert world.upstream.requests == []
    assert not await PlaygroundRun.objects.aexists()  # nothing of the prompt is kept


async def test_a_redacted_prompt_is_stored_with_placeholders(world):
    cast = world.cast
    await sync_to_async(policy_set)(
        actor=None, scope="org", organisation=cast.org,
        values=PolicyValues(rules=[{"detect": "pii.email", "action": "redact"}]),
    )  # fmt: skip
    client = await signed_in(cast.carol)
    status, events = await post_stream(client, conversation(cast.team, "mail jane@example.com"))
    assert status == 200
    run = await PlaygroundRun.objects.aget(request_id=meta_of(events)["request_id"])
    stored = json.dumps(run.messages) + run.answer + run.search_text
    assert "jane@example.com" not in stored
    assert "[REDACTED_EMAIL" in run.messages[-1]["content"]
    assert "redact pii.email" in meta_of(events)["guardrails"]


async def test_all_providers_down_is_a_sentence(world):
    world.upstream.push_fault("503", count=5)
    client = await signed_in(world.cast.carol)
    status, body = await post_stream(client, conversation(world.cast.team))
    assert status == 503
    assert body["error"]["message"] == (
        "All providers behind 'fast' are down or overloaded right now, so no answer could be "
        "had. Try again in a moment."
    )


async def test_a_prompt_too_long_is_a_sentence(world):
    world.upstream.push_fault("context_length")
    client = await signed_in(world.cast.carol)
    status, body = await post_stream(client, conversation(world.cast.team))
    assert status == 400
    assert body["error"]["message"].startswith("The prompt is too long for the model behind 'fast'")


async def test_a_stream_that_breaks_midway_ends_with_an_error_event(world):
    world.upstream.push_fault("reset_mid_stream", after=3)
    client = await signed_in(world.cast.carol)
    status, events = await post_stream(client, conversation(world.cast.team, "a b c d e f g"))
    assert status == 200
    names = [name for name, _ in events]
    assert names[-2:] == ["error", "meta"]
    error = events[-2][1]
    assert error["message"] == "The answer broke off: the provider's stream failed part-way."
    assert "Traceback" not in json.dumps(events)
    assert meta_of(events)["status"] == "error"
    await sync_to_async(usage_recorder.flush)()
    row = await UsageRecord.objects.aget(request_id=error["request_id"])
    assert row.status_code == 502

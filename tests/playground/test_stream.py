"""The playground's stream endpoint, in process: the event format, the facts in the final
meta event, usage and audit rows attributed to the user and team, and the history row."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from aigateway.audit.models import AuditEvent
from aigateway.audit.writer import audit_writer
from aigateway.playground.models import PlaygroundRun
from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from auth.models import OrgMembership, OrgRole, TeamMembership
from tests.playground.support import (
    conversation,
    meta_of,
    post_stream,
    signed_in,
    tokens_text,
    upstream,
    world,
)

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["upstream", "world"]  # fixtures used by name


def _flushed() -> None:
    usage_recorder.flush()
    audit_writer.flush()


async def test_tokens_stream_as_events_and_a_meta_event_comes_last(world):
    client = await signed_in(world.cast.carol)
    status, events = await post_stream(client, conversation(world.cast.team, "hello there"))
    assert status == 200
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "meta"
    assert set(names[1:-1]) == {"token"} and len(names) - 2 >= 5  # one event per word
    assert tokens_text(events) == "Echo from up-model: hello there"
    assert events[0][1]["request_id"].startswith("req_")


async def test_the_meta_event_says_who_served_it_and_what_it_cost(world):
    client = await signed_in(world.cast.carol)
    _, events = await post_stream(client, conversation(world.cast.team, "hello there"))
    meta = meta_of(events)
    assert meta["request_id"] == events[0][1]["request_id"]
    assert (meta["provider"], meta["upstream_model"]) == ("fake-openai", "up-model")
    assert meta["deployment_id"] == await world.fast.deployments.values_list("pk", flat=True).aget()
    assert (meta["failovers"], meta["failover_reasons"], meta["attempts"]) == (0, [], 1)
    # The fake counts words: "Be brief." + "hello there" in, the echo's five words out.
    assert (meta["input_tokens"], meta["output_tokens"]) == (4, 5)
    assert meta["cache"] in ("MISS", "BYPASS")
    assert meta["latency_ms"] > 0 and meta["ttft_ms"] is not None
    assert meta["ttft_ms"] <= meta["latency_ms"]
    assert meta["status"] == "ok" and meta["finish_reason"] == "stop"
    assert float(meta["cost_usd"]) >= 0
    assert meta["audit_url"] is None  # a member cannot read the audit log: no link


async def test_an_audit_reader_gets_a_link_to_the_calls_audit_entry(world):
    cast = world.cast
    await TeamMembership.objects.acreate(user=cast.dave, team=cast.team)
    client = await signed_in(cast.dave)
    _, events = await post_stream(client, conversation(cast.team))
    meta = meta_of(events)
    assert meta["audit_url"] == f"/audit/?request_id={meta['request_id']}"


async def test_usage_and_audit_name_the_user_and_the_team(world):
    cast = world.cast
    client = await signed_in(cast.carol)
    _, events = await post_stream(client, conversation(cast.team))
    request_id = meta_of(events)["request_id"]
    await sync_to_async(_flushed)()
    row = await UsageRecord.objects.aget(request_id=request_id)
    assert (row.source, row.user_id, row.team_id, row.organisation_id) == (
        "playground", cast.carol.pk, cast.team.pk, cast.org.pk,
    )  # fmt: skip
    assert row.api_key_id is None and row.stream and row.status_code == 200
    assert (row.input_tokens, row.output_tokens, row.route) == (4, 5, "fast")
    event = await AuditEvent.objects.aget(target_type="api_call", target_id=request_id)
    assert event.details["source"] == "playground"
    assert (event.details["user_id"], event.details["team_id"]) == (cast.carol.pk, cast.team.pk)
    assert "hello" not in str(event.details)  # metadata only, never the prompt


async def test_the_run_is_saved_to_the_users_history(world):
    cast = world.cast
    client = await signed_in(cast.carol)
    payload = conversation(cast.team, "and now?")
    payload["messages"] = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "and now?"},
    ]
    _, events = await post_stream(client, payload)
    run = await PlaygroundRun.objects.aget(request_id=meta_of(events)["request_id"])
    assert (run.user_id, run.team_id, run.route) == (cast.carol.pk, cast.team.pk, "fast")
    assert [m["role"] for m in run.messages] == ["system", "user", "assistant", "user"]
    assert run.messages[0]["content"] == "Be brief."
    assert run.params == {"temperature": 0.7, "max_tokens": 200}
    assert run.answer == "Echo from up-model: and now?"
    assert run.meta["output_tokens"] == 5 and run.meta["status"] == "ok"


async def test_two_routes_stream_side_by_side(world):
    """Compare mode: the page opens two streams at once, one per route."""
    import asyncio

    client = await signed_in(world.cast.carol)
    (_, a), (_, b) = await asyncio.gather(
        post_stream(client, conversation(world.cast.team, "same prompt", route="fast")),
        post_stream(client, conversation(world.cast.team, "same prompt", route="other")),
    )
    assert tokens_text(a) == "Echo from up-model: same prompt"
    assert tokens_text(b) == "Echo from other-model: same prompt"
    assert meta_of(a)["upstream_model"] == "up-model"
    assert meta_of(b)["upstream_model"] == "other-model"


async def test_an_identical_deterministic_prompt_is_a_cache_hit(world):
    # Routes cache deterministic requests (temperature 0) by default, per team.
    client = await signed_in(world.cast.carol)
    payload = conversation(world.cast.team, "cache me", temperature=0)
    _, first = await post_stream(client, payload)
    _, second = await post_stream(client, payload)
    assert meta_of(first)["cache"] == "MISS"
    assert meta_of(second)["cache"] == "HIT"
    assert tokens_text(second) == tokens_text(first)
    assert len(world.upstream.requests) == 1


async def test_a_platform_admin_in_a_team_acts_for_that_team(world):
    cast = world.cast
    admins = OrgMembership.objects.filter(role=OrgRole.PLATFORM_ADMIN)
    assert await admins.filter(user=cast.alice).aexists()
    await TeamMembership.objects.acreate(user=cast.alice, team=cast.team)
    client = await signed_in(cast.alice)
    status, events = await post_stream(client, conversation(cast.team))
    assert status == 200 and meta_of(events)["audit_url"]

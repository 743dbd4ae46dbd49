"""The Batch and Files API with the official `openai` SDK over real HTTP (the live gateway),
Celery eager (no broker: a batch runs inside the create call), against the fake upstream."""

from __future__ import annotations

import io

import openai
import pytest

from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from tests.batches.conftest import ROUTE, UPSTREAM_MODEL, chat_line, echo, jsonl, parse_jsonl


def test_a_batch_runs_end_to_end_through_the_sdk(batch_setup, live_gateway, cast):
    client = batch_setup.sdk(live_gateway.openai_base_url)
    prompts = {f"req-{i}": f"Tell me about item {i}" for i in range(5)}
    lines = [chat_line(cid, prompt, max_tokens=50) for cid, prompt in prompts.items()]
    uploaded = client.files.create(file=("input.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
    assert (uploaded.object, uploaded.purpose) == ("file", "batch")
    assert uploaded.filename == "input.jsonl"
    assert uploaded.bytes == len(jsonl(lines))

    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
        metadata={"job": "nightly"},
    )  # fmt: skip
    batch = client.batches.retrieve(created.id)
    assert batch.status == "completed"
    assert batch.metadata == {"job": "nightly"}
    assert batch.model == ROUTE
    assert (batch.request_counts.total, batch.request_counts.completed) == (5, 5)
    assert batch.request_counts.failed == 0
    assert batch.error_file_id is None and batch.errors is None
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    assert batch.expires_at - batch.created_at == 24 * 3600

    output = parse_jsonl(client.files.content(batch.output_file_id).content)
    assert sorted(line["custom_id"] for line in output) == sorted(prompts)
    for line in output:
        assert line["error"] is None
        assert line["id"].startswith("batch_req_")
        response = line["response"]
        assert response["status_code"] == 200
        assert response["request_id"].startswith("req_")
        body = response["body"]
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == echo(prompts[line["custom_id"]])
    assert len({line["response"]["request_id"] for line in output}) == 5
    assert len(batch_setup.upstream.requests) == 5

    usage_total = sum(line["response"]["body"]["usage"]["total_tokens"] for line in output)
    assert batch.usage.total_tokens == usage_total > 0

    usage_recorder.flush()
    records = UsageRecord.objects.filter(source="batch")
    assert records.count() == 5
    assert {r.request_id for r in records} == {line["response"]["request_id"] for line in output}
    assert {(r.team_id, r.route, r.status_code) for r in records} == {(cast.team.pk, ROUTE, 200)}

    output_file = client.files.retrieve(batch.output_file_id)
    assert output_file.purpose == "batch_output"
    assert output_file.filename == f"{batch.id}_output.jsonl"
    assert [b.id for b in client.batches.list()] == [batch.id]


def test_requests_that_fail_go_to_the_error_file(batch_setup, live_gateway, settings):
    # One request at a time, in line order: the first to reach the upstream is the one the
    # fault is meant for (with 8 in flight, "fine" sometimes got there first).
    settings.AIGATEWAY_BATCH_CONCURRENCY = 1
    client = batch_setup.sdk(live_gateway.openai_base_url)
    batch_setup.upstream.push_fault("400", path="/v1/chat/completions")
    lines = [
        chat_line("upstream-refuses", "first"),  # the fake upstream answers it 400
        {"custom_id": "no-messages", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": ROUTE}},
        chat_line("streaming", "no streams here", stream=True),
        chat_line("fine", "all good"),
    ]  # fmt: skip
    batch = client.batches.create(
        input_file_id=batch_setup.upload(client, lines), endpoint="/v1/chat/completions",
        completion_window="24h",
    )  # fmt: skip
    assert batch.status == "completed"
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 3)

    output = parse_jsonl(client.files.content(batch.output_file_id).content)
    assert [line["custom_id"] for line in output] == ["fine"]
    errors = {line["custom_id"]: line for line in
              parse_jsonl(client.files.content(batch.error_file_id).content)}  # fmt: skip
    assert set(errors) == {"upstream-refuses", "no-messages", "streaming"}
    for line in errors.values():
        assert line["error"] is None  # an HTTP error is in "response", as OpenAI writes it
        assert line["response"]["status_code"] == 400
        assert line["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert errors["no-messages"]["response"]["body"]["error"]["param"] == "messages"
    assert errors["streaming"]["response"]["body"]["error"]["param"] == "stream"


def test_an_invalid_input_file_fails_the_batch_with_its_errors(batch_setup, live_gateway, cast):
    client = batch_setup.sdk(live_gateway.openai_base_url)
    lines = [
        chat_line("a", "fine"),
        "{not json",
        chat_line("a", "same custom_id again"),
        {**chat_line("b", "wrong url"), "url": "/v1/embeddings"},
        chat_line("c", "another model", model="other-model"),
        {**chat_line("d", "wrong method"), "method": "GET"},
        {"method": "POST", "url": "/v1/chat/completions", "body": {"model": ROUTE}},
    ]
    batch = client.batches.create(
        input_file_id=batch_setup.upload(client, lines), endpoint="/v1/chat/completions",
        completion_window="24h",
    )  # fmt: skip
    assert batch.status == "failed"
    assert batch.failed_at is not None and batch.in_progress_at is None
    found = [(e.code, e.line, e.param) for e in batch.errors.data]
    assert found == [
        ("invalid_json_line", 2, None),
        ("duplicate_custom_id", 3, "custom_id"),
        ("invalid_url", 4, "url"),
        ("mismatched_model", 5, "body.model"),
        ("invalid_method", 6, "method"),
        ("missing_required_parameter", 7, "custom_id"),
    ]
    assert batch.output_file_id is None and batch.error_file_id is None
    assert batch_setup.upstream.requests == []  # nothing ran


def test_a_model_the_key_may_not_use_fails_validation(batch_setup, live_gateway):
    client = batch_setup.sdk(live_gateway.openai_base_url)
    lines = [chat_line("a", "x", model="secret-model"), chat_line("b", "y", model="secret-model")]
    batch = client.batches.create(
        input_file_id=batch_setup.upload(client, lines), endpoint="/v1/chat/completions",
        completion_window="24h",
    )  # fmt: skip
    assert batch.status == "failed"
    assert [(e.code, e.line) for e in batch.errors.data] == [("model_not_found", 1)]

    empty = client.batches.create(
        input_file_id=batch_setup.upload(client, []), endpoint="/v1/chat/completions",
        completion_window="24h",
    )  # fmt: skip
    assert [e.code for e in empty.errors.data] == ["empty_file"]


def test_create_rejects_bad_parameters_with_openai_errors(batch_setup, live_gateway):
    client = batch_setup.sdk(live_gateway.openai_base_url)
    file_id = batch_setup.upload(client, [chat_line("a", "x")])
    with pytest.raises(openai.BadRequestError) as bad_endpoint:
        client.batches.create(
            input_file_id=file_id, endpoint="/v1/completions", completion_window="24h"
        )
    assert bad_endpoint.value.body["param"] == "endpoint"
    with pytest.raises(openai.BadRequestError) as bad_window:
        client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="1h"
        )  # type: ignore[arg-type]
    assert bad_window.value.body["param"] == "completion_window"
    with pytest.raises(openai.NotFoundError):
        client.batches.create(
            input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.BadRequestError) as bad_metadata:
        client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h",
            metadata={f"k{i}": "v" for i in range(17)},
        )  # fmt: skip
    assert bad_metadata.value.body["param"] == "metadata"
    with pytest.raises(openai.BadRequestError) as bad_purpose:
        client.files.create(file=("x.jsonl", io.BytesIO(b"{}\n")), purpose="fine-tune")
    assert bad_purpose.value.body["param"] == "purpose"
    assert batch_setup.upstream.requests == []


def test_another_team_sees_none_of_it(batch_setup, live_gateway, cast):
    from tests.factories import make_key

    client = batch_setup.sdk(live_gateway.openai_base_url)
    file_id = batch_setup.upload(client, [chat_line("a", "mine")])
    batch = client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    outsider = batch_setup.sdk(
        live_gateway.openai_base_url, make_key(cast.other_team, batch_setup.route).raw_key
    )
    for attempt in (
        lambda: outsider.batches.retrieve(batch.id),
        lambda: outsider.batches.cancel(batch.id),
        lambda: outsider.files.retrieve(file_id),
        lambda: outsider.files.content(batch.output_file_id),
        lambda: outsider.files.delete(file_id),
        lambda: outsider.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert list(outsider.batches.list()) == []
    assert list(outsider.files.list()) == []
    assert client.files.retrieve(file_id).id == file_id  # still there for its owner


def test_files_can_be_listed_read_and_deleted(batch_setup, live_gateway, settings):
    client = batch_setup.sdk(live_gateway.openai_base_url)
    content = jsonl([chat_line("a", "x")])
    first = client.files.create(file=("one.jsonl", io.BytesIO(content)), purpose="batch")
    second = client.files.create(file=("two.jsonl", io.BytesIO(content)), purpose="batch")
    assert [f.id for f in client.files.list()] == [second.id, first.id]
    assert [f.id for f in client.files.list(order="asc")] == [first.id, second.id]
    page = client.files.list(limit=1)
    assert [f.id for f in page.data] == [second.id] and page.has_more
    assert [f.id for f in page.get_next_page().data] == [first.id]
    assert client.files.content(first.id).content == content

    deleted = client.files.delete(first.id)
    assert (deleted.id, deleted.deleted) == (first.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(first.id)

    # Larger than the 4 MiB JSON body limit: uploads have their own limit.
    big = jsonl([chat_line(f"id-{i}", "x" * 900) for i in range(6000)])
    assert len(big) > 5_000_000
    uploaded = client.files.create(file=("big.jsonl", io.BytesIO(big)), purpose="batch")
    assert uploaded.bytes == len(big)
    assert [f.id for f in client.files.list(purpose="batch_output")] == []

    settings.AIGATEWAY_BATCH_FILE_MAX_BYTES = 100
    with pytest.raises(openai.APIStatusError) as too_big:
        client.files.create(file=("big.jsonl", io.BytesIO(b"x" * 500)), purpose="batch")
    assert too_big.value.status_code == 413


def test_batches_are_listed_newest_first_in_pages(batch_setup, live_gateway):
    client = batch_setup.sdk(live_gateway.openai_base_url)
    file_id = batch_setup.upload(client, [chat_line("a", "x")])
    made = [
        client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        ).id
        for _ in range(3)
    ]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == made[::-1][:2] and first.has_more
    assert [b.id for b in first.get_next_page().data] == made[:1]
    assert [b.id for b in client.batches.list()] == made[::-1]


def test_an_embeddings_batch_runs_through_the_embeddings_pipeline(batch_setup, live_gateway):
    client = batch_setup.sdk(live_gateway.openai_base_url)
    lines = [
        {"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings",
         "body": {"model": ROUTE, "input": f"text {i}"}}
        for i in range(3)
    ]  # fmt: skip
    batch = client.batches.create(
        input_file_id=batch_setup.upload(client, lines), endpoint="/v1/embeddings",
        completion_window="24h",
    )  # fmt: skip
    assert (batch.status, batch.request_counts.completed) == ("completed", 3)
    output = parse_jsonl(client.files.content(batch.output_file_id).content)
    for line in output:
        body = line["response"]["body"]
        assert body["object"] == "list" and body["model"] in (ROUTE, UPSTREAM_MODEL)
        assert isinstance(body["data"][0]["embedding"], list)
    assert [r.path for r in batch_setup.upstream.requests] == ["/v1/embeddings"] * 3

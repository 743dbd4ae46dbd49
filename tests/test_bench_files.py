"""The benchmark's own parts (docs/benchmarks.md, "Comparison"): bench/gateway.yaml applies to
a real database, the fake upstream speaks OpenAI to the real ``openai`` SDK, and the harness
reads wrk's output and /proc as it should. No wrk, no LiteLLM: those stay out of CI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from aigateway.quotas.models import Limit
from aigateway.routing.models import Route
from auth.keys import hash_api_key
from auth.models import ApiKey
from bench import report, scenarios, targets
from tests.config_as_code.support import gateway

ROOT = Path(__file__).resolve().parents[1]
BENCH_YAML = ROOT / "bench" / "gateway.yaml"


@pytest.fixture
def bench_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_KEY", targets.BENCH_KEY)
    monkeypatch.setenv("BENCH_KEY_NOLIMITS", targets.BENCH_KEY_NOLIMITS)


@pytest.mark.django_db
@pytest.mark.usefixtures("bench_env")
def test_bench_gateway_yaml_applies_and_is_stable() -> None:
    planned, _ = gateway("apply", str(BENCH_YAML), "--dry-run")
    assert "+ route gpt-4o-mini-cached" in planned
    assert not Route.objects.exists()  # a dry run writes nothing

    gateway("apply", str(BENCH_YAML))
    routes = {r.name: r for r in Route.objects.all()}
    assert set(routes) == {"gpt-4o-mini", "gpt-4o-mini-slow", "gpt-4o-mini-cached"}
    slow = routes["gpt-4o-mini-slow"].deployments.get()
    assert slow.upstream_model == "gpt-4o-mini-latency-300ms"  # what the fake upstream reads
    assert slow.provider.base_url == f"http://127.0.0.1:{targets.UPSTREAM_PORT}/v1"
    limited = ApiKey.objects.get(key_hash=hash_api_key(targets.BENCH_KEY))
    free = ApiKey.objects.get(key_hash=hash_api_key(targets.BENCH_KEY_NOLIMITS))
    assert limited.team.organisation.slug == "bench"
    assert free.team.organisation.slug == "bench-nolimits"
    # Every request of the production key runs four limits; the other key's org has none.
    assert Limit.objects.filter(enabled=True).count() == 4
    assert not Limit.objects.filter(scope="org", scope_id=free.team.organisation_id).exists()

    again, _ = gateway("apply", str(BENCH_YAML))  # what make bench-serve does on every start
    assert "no changes" in again


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_upstream", "--port", str(port),
         "--chunks", "5", "--chunk-delay-ms", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert b"fake upstream on" in process.stdout.readline()  # listening
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_fake_upstream_answers_the_openai_sdk(upstream: str) -> None:
    client = openai.OpenAI(base_url=upstream, api_key="sk-not-checked", max_retries=0)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "three words here"}
    ]
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.prompt_tokens == 3

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.split() == [f"tok{i}" for i in range(5)]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"

    no_usage = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    assert all(c.usage is None for c in no_usage)
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "gpt-4o-mini-latency-300ms"]


def test_fake_upstream_latency_from_model_name_and_headers(upstream: str) -> None:
    client = openai.OpenAI(base_url=upstream, api_key="x", max_retries=0)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "hi"}
    ]
    started = time.perf_counter()
    client.chat.completions.create(model="gpt-4o-mini-latency-120ms", messages=messages)
    assert time.perf_counter() - started >= 0.12
    started = time.perf_counter()
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert time.perf_counter() - started < 0.1
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True,
        extra_headers={"x-fake-chunks": "2", "x-fake-chunk-delay-ms": "1"},
    )  # fmt: skip
    assert sum(1 for c in stream if c.choices and c.choices[0].delta.content) == 2


WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:18080/v1/chat/completions
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    35.12ms   10.07ms 120.00ms   80.00%
  Latency Distribution
     50%   34.50ms
     75%   40.00ms
     90%   48.00ms
     99%    1.20s
  2003 requests in 5.01s, 1.02MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:    399.80
"""


def test_parse_wrk_counts_only_completed_calls() -> None:
    result = scenarios.parse_wrk(WRK_OUTPUT)
    assert (result.requests, result.seconds) == (2000, 5.01)
    assert (result.p50_ms, result.p99_ms) == (34.5, 1200.0)
    assert (result.errors, result.answered_errors) == (6, 3)  # 3 of them answered by the target


def test_report_replaces_only_the_marked_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Title\nbefore\n{report.START}\nold table\n{report.END}\nafter\n")
    report.write(doc, "new table\n")
    assert doc.read_text() == f"# Title\nbefore\n{report.START}\nnew table\n{report.END}\nafter\n"


def test_tree_cpu_includes_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "sum(range(10**7)); input()"],
                             stdin=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while targets.tree_cpu_seconds(child.pid) < 0.05:  # the child's busy loop is counted
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert targets.tree_cpu_seconds(os.getpid()) >= targets.tree_cpu_seconds(child.pid)
    finally:
        child.communicate(b"\n", timeout=20)


def test_rss_soak_summary_flags_a_growing_worker() -> None:
    from bench.rss_soak import summary

    rows = [{"t": 10.0 * i, "rps": 600.0, "errors": 0, "p99_ms": 50.0,
             "rss_mib_0": 240.0 + (i % 2) * 0.5, "rss_mib_1": 240.0 + 10.0 * i,
             "usage_lag": 16, "audit_lag": 100 * i}
            for i in range(1, 61)]  # fmt: skip
    text = summary(rows, 360_000, None)
    assert "| 0 | 240.5 | 240.0 |" in text and "flat |" in text
    assert "| 1 | 250.0 | 840.0 |" in text and "GROWS" in text
    assert "RSS flat within ±10 %: NO" in text and "~360,000 calls" in text
    assert "NOT all written" in text and "largest lag after a window was 6,000" in text
    assert "all written 1.5 s after" in summary(rows, 360_000, 1.5)


def test_rss_soak_counts_the_records_written(tmp_path) -> None:
    import sqlite3

    from bench.rss_soak import records, wait_for_records

    database = tmp_path / "bench.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE usage_usagerecord (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE audit_auditevent (id INTEGER PRIMARY KEY, action TEXT)")
        db.executemany("INSERT INTO usage_usagerecord VALUES (NULL)", [()] * 5)
        db.executemany("INSERT INTO audit_auditevent VALUES (NULL, ?)",
                       [("api.call",)] * 4 + [("config.applied",)])  # fmt: skip
    db.close()
    assert records(database) == (5, 4)  # only the API calls' audit rows
    assert wait_for_records(database, 4, timeout=1) is not None
    assert wait_for_records(database, 5, timeout=0.6) is None

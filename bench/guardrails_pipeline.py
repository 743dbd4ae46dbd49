"""Cost of the guardrails stage in the pipeline, per call, with a policy that enables every
built-in detector (secrets and personal data redacted, injection heuristics flagged) plus a
custom word list and all three limits.

    .venv/bin/python -m bench.guardrails_pipeline [--n 5000]

What is timed is what the pipeline runs for a call (aigateway/guardrails/stage.py), inside a
running event loop, wall time per call:

* input: ``guardrails_admit`` (policy lookup in the warmed config cache, limits, parameter
  check, every detector on every message, redaction, the prompt's token count);
* output: ``guardrails_answer`` on a complete answer, then ``guardrails_reveal``;
* stream: the answer as 60 word-sized chunks through ``guard_stream`` (a StreamScanner) and
  ``reveal_stream``, per stream;
* without a policy: ``guardrails_admit`` when no policy applies (the cost every call pays).

A typical request: a 400-character system prompt and three turns (about 1,100 characters),
one e-mail address in the last user turn; an answer of about 800 characters.
Detector costs on their own are measured by bench/guardrails_cost.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aigateway.settings")
os.environ.setdefault("AIGATEWAY_ALLOW_INSECURE_DEFAULTS", "true")
os.environ.setdefault("AIGATEWAY_CONFIG_CACHE_SECONDS", "3600")
os.environ.setdefault("REDIS_URL", "")

import django

django.setup()

from aigateway.core.config_cache import config_cache  # noqa: E402
from aigateway.gateway.pipeline import CallContext, CallOutcome  # noqa: E402
from aigateway.gateway.principal import Principal  # noqa: E402
from aigateway.gateway.resilience import OpenedStream  # noqa: E402
from aigateway.guardrails import stage  # noqa: E402
from aigateway.guardrails.policy import CACHE_KEY, PolicySet, stored_policy  # noqa: E402
from providers.base import DeploymentTarget  # noqa: E402
from providers.types import ChatChunk, ChatRequest, ChatResponse, Message, ServedBy, Usage  # noqa: E402

SYSTEM = (
    "You are a helpful assistant for the customer support team of an online shop. Answer "
    "politely and briefly. If you do not know the answer, say so and suggest contacting a "
    "human agent. Never promise refunds; explain the return policy instead: items can be "
    "returned within 30 days of delivery, unused and in their original packaging, with the "
    "receipt. Shipping costs are refunded only for damaged or wrong items."
)
TURNS = [
    (
        "user",
        "Hi, I ordered a pair of running shoes last week (order 48213) and they are too "
        "small. Can I exchange them for a larger size, and how long would that take? I need them "
        "for a race at the end of the month.",
    ),
    (
        "assistant",
        "Hello! I am sorry the shoes do not fit. You can return them within 30 days "
        "of delivery, unused and in their original packaging, and order the larger size. "
        "Exchanges usually take five to seven working days once we receive the parcel. Would you "
        "like me to explain how to print the return label?",
    ),
    (
        "user",
        "Yes please. Also, can you send the label to my work address instead, "
        "jane.doe@example.com? I am not at home during the day and would rather not miss it.",
    ),
]
ANSWER = (
    "Of course. To print your return label, open the order in your account, choose Return "
    "items, select the shoes and the reason Too small, then confirm. The label is sent to the "
    "e-mail address on your account; we cannot send it to another address for security "
    "reasons, but you can forward it yourself. Pack the shoes in their original box, attach "
    "the label and drop the parcel at any post office or parcel shop. Once the return is "
    "scanned you can place a new order for the larger size right away, so it can ship before "
    "the parcel reaches us. If the new pair is out of stock, we will let you know within a "
    "day. Good luck with your race at the end of the month!"
)
RULES = [
    {"detect": "secrets", "action": "redact"},
    {"detect": "pii", "action": "redact"},
    {"detect": "injection", "action": "flag"},
]


def _policies() -> PolicySet:
    org = stored_policy(scope="org", rules=RULES, reversible=True)
    team = stored_policy(
        scope="team",
        rules=[
            {
                "detect": "custom.rivals",
                "words": ["globex", "initech", "umbrella corp"],
                "action": "flag",
            }
        ],
        max_prompt_tokens=8000,
        max_messages=50,
        max_output_tokens=2000,
    )
    # Organisation 3: one output rule (a word list) only, to show what the stream wrappers
    # cost apart from the detectors.
    light = stored_policy(
        scope="org",
        rules=[
            {
                "detect": "custom.rivals",
                "words": ["globex"],
                "action": "redact",
                "direction": "output",
            }
        ],
    )
    return PolicySet({1: org, 3: light}, {2: team}, {})


def _ctx(i: int, org: int = 1) -> CallContext:
    """A call of organisation 1, team 2 (both have a policy); organisation 3: one output
    rule; any other ``org``: no policy."""
    principal = Principal(
        organisation_id=org,
        team_id=2 if org == 1 else 99,
        allowed_routes=frozenset({"gpt-4o"}),
        api_key_id=3,
        key_prefix="agw-bench",
    )
    return CallContext(request_id=f"req_bench_{i}", principal=principal)


def _request() -> ChatRequest:
    messages = [Message("system", SYSTEM), *(Message(r, t) for r, t in TURNS)]  # type: ignore[arg-type]
    return ChatRequest(model="gpt-4o", messages=messages, temperature=0.3)


def _answer() -> ChatResponse:
    return ChatResponse(
        id="x",
        model="gpt-4o",
        content=ANSWER,
        finish_reason="stop",
        usage=Usage(300, 180),
        served_by=ServedBy("openai", 1, "gpt-4o"),
    )


def _pieces() -> list[str]:
    words = ANSWER.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


async def _stream_once(ctx: CallContext, outcome: CallOutcome, pieces: list[str]) -> str:
    async def upstream():
        for piece in pieces[1:]:
            yield ChatChunk(content=piece)
        yield ChatChunk(finish_reason="stop", usage=Usage(300, 180))

    target = DeploymentTarget(
        deployment_id=1,
        provider_name="openai",
        provider_kind="openai",
        upstream_model="gpt-4o",
        base_url="",
        api_key="",
    )
    opened = OpenedStream(target, ChatChunk(role="assistant", content=pieces[0]), upstream())
    opened = stage.guard_stream(ctx, outcome, opened)

    async def relay():
        yield opened.first
        async for chunk in opened.rest:
            yield chunk

    out = [c.content or "" async for c in stage.reveal_stream(outcome, relay())]
    return "".join(out)


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = lambda p: ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]  # noqa: E731
    return (
        f"p50 {statistics.median(ordered) * 1000:.3f} ms  p90 {pick(90) * 1000:.3f} ms  "
        f"p99 {pick(99) * 1000:.3f} ms"
    )


async def main(n: int) -> None:
    config_cache.set(CACHE_KEY, _policies())
    config_cache._checked_at = time.monotonic()
    inputs, outputs, streams, light, none = [], [], [], [], []
    pieces = _pieces()
    for i in range(n + 200):  # the first 200: warm-up
        ctx, outcome, request, answer = _ctx(i), CallOutcome(), _request(), _answer()
        started = time.perf_counter()
        await stage.guardrails_admit(ctx, request, outcome, provider_kind="openai")
        admitted = time.perf_counter()
        stage.guardrails_answer(ctx, outcome, answer)
        shown = stage.guardrails_reveal(outcome, answer)
        answered = time.perf_counter()
        streamed_start = time.perf_counter()
        text = await _stream_once(ctx, outcome, pieces)
        streamed = time.perf_counter()
        light_ctx, light_outcome = _ctx(i, org=3), CallOutcome()
        await stage.guardrails_admit(light_ctx, _request(), light_outcome, provider_kind="openai")
        light_start = time.perf_counter()
        await _stream_once(light_ctx, light_outcome, pieces)
        light_done = time.perf_counter()
        bare_ctx, bare_request = _ctx(i, org=99), _request()
        bare = time.perf_counter()
        await stage.guardrails_admit(bare_ctx, bare_request, CallOutcome(), provider_kind="openai")
        bare_done = time.perf_counter()
        if i >= 200:
            inputs.append(admitted - started)
            outputs.append(answered - admitted)
            streams.append(streamed - streamed_start)
            light.append(light_done - light_start)
            none.append(bare_done - bare)
    assert "[REDACTED_EMAIL_1]" in request.messages[-1].content  # type: ignore[operator]
    assert shown.content == ANSWER and text == ANSWER
    notes = {(g.rule, g.action) for g in ctx.trace.guardrails}
    total = [a + b for a, b in zip(inputs, outputs, strict=True)]
    print(
        f"guardrails stage, {n} calls, every built-in detector on ({len(RULES)} rules + "
        f"a word list + 3 limits); matched: {sorted(notes)}"
    )
    print(f"  input  (admit: limits, detectors, redaction, token count)  {_ms(inputs)}")
    print(f"  output (answer + reveal, ~{len(ANSWER)} chars)                 {_ms(outputs)}")
    print(f"  input + output, non-streamed call                         {_ms(total)}")
    print(f"  stream output ({len(pieces)} chunks: scanner + reveal)            {_ms(streams)}")
    print(f"  stream output, one word-list rule (the wrappers' own cost)    {_ms(light)}")
    print(f"  no policy applies (admit)                                 {_ms(none)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    asyncio.run(main(parser.parse_args().n))

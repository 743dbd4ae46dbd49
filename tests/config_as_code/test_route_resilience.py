"""`manage.py gateway`: a route's strategy, retries and fallback reasons, and deployments'
weights and context windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management.base import CommandError
from django.utils import timezone

from aigateway.config_as_code.schema import parse_data
from aigateway.config_as_code.specs import ROUTE_SETTINGS
from aigateway.routing.models import Deployment, Route
from providers.models import Provider
from tests.config_as_code.support import apply, counts, gateway

pytestmark = pytest.mark.django_db

SMART = """
version: 1
providers:
  - {name: openai, kind: openai}
  - {name: anthropic, kind: anthropic}
routes:
  - name: smart
    strategy: weighted
    retries: {max: 3, backoff_base_seconds: 0.5, backoff_cap_seconds: 30, timeout_seconds: 120}
    fallback_on: {errors: true, rate_limit: false, context_window: true, content_filter: true}
    deployments:
      - {provider: openai, model: gpt-4o, weight: 3, max_context_tokens: 128000}
      - {provider: anthropic, model: claude-sonnet-4-5, weight: 1, max_context_tokens: 200000}
"""

SETTINGS = {
    "strategy": "weighted",
    "max_retries": 3,
    "backoff_base_seconds": 0.5,
    "backoff_cap_seconds": 30.0,
    "timeout_seconds": 120.0,
    "fallback_on_errors": True,
    "fallback_on_rate_limit": False,
    "fallback_on_context_window": True,
    "fallback_on_content_filter": True,
}
DEFAULT_BLOCKS = {
    "retries": {
        "max": 3,
        "backoff_base_seconds": 1.0,
        "backoff_cap_seconds": 60.0,
        "timeout_seconds": 600.0,
    },
    "fallback_on": {
        "errors": True,
        "rate_limit": True,
        "context_window": True,
        "content_filter": False,
    },
}


def route_settings(name: str = "smart") -> dict[str, Any]:
    return dict(Route.objects.filter(name=name).values(*SETTINGS).get())


def deployments(name: str = "smart") -> list[tuple[str, int, int | None, int]]:
    rows = Deployment.objects.filter(route__name=name).order_by("priority")
    return [(d.provider.name, d.weight, d.max_context_tokens, d.priority) for d in rows]


def test_defaults_are_the_models() -> None:
    for _, _, name, default in ROUTE_SETTINGS:
        assert Route._meta.get_field(name).default == default, name


def test_settings_round_trip(tmp_path: Path) -> None:
    out, _ = apply(tmp_path, SMART)
    assert (
        "+ route smart: deployments [openai:gpt-4o (weight 3, max_context_tokens 128000), " in out
    )
    assert route_settings() == SETTINGS
    assert deployments() == [("openai", 3, 128000, 0), ("anthropic", 1, 200000, 1)]

    exported, _ = gateway("export")
    route = yaml.safe_load(exported)["routes"][0]
    keys = ["name", "description", "strategy", "retries", "fallback_on", "cache", "deployments"]
    assert list(route) == keys
    assert route["retries"] == {
        "max": 3,
        "backoff_base_seconds": 0.5,
        "backoff_cap_seconds": 30.0,
        "timeout_seconds": 120.0,
    }
    assert list(route["retries"]) == list(DEFAULT_BLOCKS["retries"])  # deterministic order
    assert route["fallback_on"] == {
        "errors": True,
        "rate_limit": False,
        "context_window": True,
        "content_filter": True,
    }
    assert route["deployments"][0] == {
        "provider": "openai",
        "model": "gpt-4o",
        "weight": 3,
        "enabled": True,
        "max_context_tokens": 128000,
    }
    assert apply(tmp_path, exported)[0].strip() == "no changes"
    assert apply(tmp_path, SMART)[0].strip() == "no changes"
    assert gateway("export")[0] == exported


def test_export_always_writes_the_blocks(tmp_path: Path) -> None:
    demo = Provider.objects.create(name="demo", kind="demo")
    route = Route.objects.create(name="plain")
    Deployment.objects.create(route=route, provider=demo, upstream_model="demo")
    exported, _ = gateway("export")
    data = yaml.safe_load(exported)["routes"][0]
    assert {k: data[k] for k in DEFAULT_BLOCKS} == DEFAULT_BLOCKS
    assert data["strategy"] == "ordered"
    assert "max_context_tokens" not in data["deployments"][0]  # unset: omitted
    assert (
        "    retries:\n      max: 3\n      backoff_base_seconds: 1.0\n" in exported
    )  # block style
    assert apply(tmp_path, exported)[0].strip() == "no changes"


def test_changed_settings_are_shown_in_the_dry_run(tmp_path: Path) -> None:
    apply(tmp_path, SMART)
    changed = SMART.replace("{max: 3,", "{max: 5,").replace(
        "timeout_seconds: 120", "timeout_seconds: 30"
    )
    changed = changed.replace("rate_limit: false", "rate_limit: true")
    changed = changed.replace("content_filter: true", "content_filter: false")
    planned, _ = apply(tmp_path, changed, "--dry-run")
    line = (
        "~ route smart: retries.max 3 → 5; retries.timeout_seconds 120.0 → 30.0; "
        "fallback_on.rate_limit false → true; fallback_on.content_filter true → false"
    )
    assert planned.splitlines()[0] == line
    assert route_settings() == SETTINGS  # nothing written
    done, _ = apply(tmp_path, changed)
    assert planned.splitlines()[:-1] == done.splitlines()[:-1]
    assert route_settings() == SETTINGS | {
        "max_retries": 5,
        "timeout_seconds": 30.0,
        "fallback_on_rate_limit": True,
        "fallback_on_content_filter": False,
    }
    assert apply(tmp_path, changed)[0].strip() == "no changes"


def test_omitted_blocks_and_keys_mean_the_defaults(tmp_path: Path) -> None:
    apply(tmp_path, SMART)
    partial = SMART.replace(
        "    retries: {max: 3, backoff_base_seconds: 0.5, backoff_cap_seconds: 30, "
        "timeout_seconds: 120}\n",
        "    retries: {timeout_seconds: 120}\n",
    ).replace(
        "    fallback_on: {errors: true, rate_limit: false, context_window: true, "
        "content_filter: true}\n",
        "",
    )
    out, _ = apply(tmp_path, partial)
    assert out.splitlines()[0] == (
        "~ route smart: retries.backoff_base_seconds 0.5 → 1.0; "
        "retries.backoff_cap_seconds 30.0 → 60.0; fallback_on.rate_limit false → true; "
        "fallback_on.content_filter true → false"
    )
    plain = "version: 1\nroutes:\n  - {name: smart, deployments: [{provider: openai, model: m}]}\n"
    out, _ = apply(tmp_path, plain)
    assert "strategy 'weighted' → 'ordered'; retries.timeout_seconds 120.0 → 600.0" in out
    defaults = {name: default for _, _, name, default in ROUTE_SETTINGS if name in SETTINGS}
    assert route_settings() == defaults | {"strategy": "ordered"}
    assert deployments() == [("openai", 1, None, 0)]


def test_strategies_and_weights(tmp_path: Path) -> None:
    ordered = SMART.replace("strategy: weighted", "strategy: ordered")
    apply(tmp_path, ordered)
    assert route_settings()["strategy"] == "ordered"
    out, _ = apply(tmp_path, SMART.replace("weight: 3", "weight: 5"))
    assert "~ route smart: strategy 'ordered' → 'weighted'" in out
    assert "(weight 3, max_context_tokens 128000)" in out and "(weight 5, " in out
    assert deployments()[0][:2] == ("openai", 5)
    latency = SMART.replace("strategy: weighted", "strategy: lowest_latency")
    assert "strategy 'weighted' → 'lowest_latency'" in apply(tmp_path, latency)[0]
    assert route_settings()["strategy"] == "lowest_latency"


def test_max_context_tokens_changes_keep_rows_and_health_data(tmp_path: Path) -> None:
    apply(tmp_path, SMART)
    ids = list(Deployment.objects.order_by("priority").values_list("id", flat=True))
    probed = timezone.now()
    Deployment.objects.filter(id=ids[0]).update(
        last_probe_at=probed, last_probe_ok=False, last_probe_latency_ms=12.5
    )
    changed = SMART.replace("max_context_tokens: 128000", "max_context_tokens: 64000").replace(
        ", max_context_tokens: 200000", ""
    )
    out, _ = apply(tmp_path, changed)
    assert (
        "~ route smart: deployments [openai:gpt-4o (weight 3, max_context_tokens 128000), "
        "anthropic:claude-sonnet-4-5 (max_context_tokens 200000)] → "
        "[openai:gpt-4o (weight 3, max_context_tokens 64000), anthropic:claude-sonnet-4-5]"
    ) in out
    assert deployments() == [("openai", 3, 64000, 0), ("anthropic", 1, None, 1)]
    first = Deployment.objects.get(id=ids[0])  # same rows; health data untouched
    assert (first.last_probe_at, first.last_probe_ok, first.last_probe_latency_ms) == (
        probed,
        False,
        12.5,
    )
    exported, _ = gateway("export")
    assert "last_probe" not in exported
    assert "max_context_tokens: 200000" not in exported
    assert apply(tmp_path, exported)[0].strip() == "no changes"


ROUTE = "version: 1\nroutes:\n  - name: r\n"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("    strategy: fastest", "routes[0].strategy: 'fastest' is not one of: ordered, weighted"),
        ("    retries: {max: 11}", "routes[0].retries.max: must be an integer from 0 to 10"),
        ("    retries: {max: -1}", "routes[0].retries.max: must be an integer from 0 to 10"),
        ("    retries: {max: 2.5}", "routes[0].retries.max: must be an integer from 0 to 10"),
        ("    retries: {max: true}", "routes[0].retries.max: must be an integer from 0 to 10"),
        (
            "    retries: {backoff_base_seconds: 0}",
            "routes[0].retries.backoff_base_seconds: must be a number of seconds > 0",
        ),
        (
            '    retries: {backoff_base_seconds: "1"}',
            "routes[0].retries.backoff_base_seconds: must be a number",
        ),
        (
            "    retries: {backoff_base_seconds: .nan}",
            "routes[0].retries.backoff_base_seconds: must be a finite number",
        ),
        (
            "    retries: {backoff_base_seconds: 5, backoff_cap_seconds: 2}",
            "routes[0].retries.backoff_cap_seconds: must be >= backoff_base_seconds (5)",
        ),
        (
            "    retries: {backoff_base_seconds: 90}",  # above the default cap of 60
            "routes[0].retries.backoff_cap_seconds: must be >= backoff_base_seconds (90)",
        ),
        (
            "    retries: {timeout_seconds: 0}",
            "routes[0].retries.timeout_seconds: must be a number of seconds > 0 and <= 3600",
        ),
        (
            "    retries: {timeout_seconds: 3600.5}",
            "routes[0].retries.timeout_seconds: must be a number of seconds > 0 and <= 3600",
        ),
        ("    retries: {retries: 3}", "routes[0].retries.retries: unknown field (expected"),
        ("    retries: 3", "routes[0].retries: must be a mapping"),
        (
            '    fallback_on: {errors: "yes"}',
            "routes[0].fallback_on.errors: must be true or false",
        ),
        ("    fallback_on: {content_filter: 1}", "routes[0].fallback_on.content_filter: must be"),
        ("    fallback_on: {timeouts: true}", "routes[0].fallback_on.timeouts: unknown field"),
        (
            "    deployments: [{provider: p, model: m, max_context_tokens: 0}]",
            "routes[0].deployments[0].max_context_tokens: must be a positive integer",
        ),
        (
            '    deployments: [{provider: p, model: m, max_context_tokens: "128k"}]',
            "routes[0].deployments[0].max_context_tokens: must be a positive integer",
        ),
        (
            "    deployments: [{provider: p, model: m, max_context_tokens: 3000000000}]",
            "routes[0].deployments[0].max_context_tokens: must be a positive integer",
        ),
    ],
)
def test_invalid_settings_name_the_path(tmp_path: Path, fields: str, message: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        apply(tmp_path, ROUTE + fields + "\n")
    assert message in str(excinfo.value)
    assert counts() == (0,) * 8


@pytest.mark.parametrize(
    "fields",
    [
        "    retries: {max: 0, backoff_base_seconds: 2, backoff_cap_seconds: 2}",
        "    retries: {max: 10, timeout_seconds: 3600}\n    fallback_on: {}",
        "    retries:\n    fallback_on:",  # null blocks: the defaults
        "    deployments: [{provider: demo, model: demo, max_context_tokens: null}]",
    ],
)
def test_boundary_values_are_accepted(tmp_path: Path, fields: str) -> None:
    text = "version: 1\nproviders: [{name: demo, kind: demo}]\nroutes:\n  - name: r\n" + fields
    assert "+ route r" in apply(tmp_path, text + "\n")[0]
    assert apply(tmp_path, text + "\n")[0].strip() == "no changes"


def test_the_documented_routes_and_diff_line(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "config-as-code.md").read_text()
    example = yaml.safe_load(doc.split("```yaml\n", 1)[1].split("```", 1)[0])
    routes = {r.name: r for r in parse_data(example).routes}
    defaults = {name: default for _, _, name, default in ROUTE_SETTINGS}
    assert routes["gpt-4o"].settings == defaults
    assert [d.max_context_tokens for d in routes["gpt-4o"].deployments] == [128000, 32768, None]
    smart = routes["smart"]
    assert smart.strategy == "weighted"
    assert smart.settings == defaults | {
        "max_retries": 2,
        "timeout_seconds": 120.0,
        "fallback_on_content_filter": True,
    }
    assert [(d.provider, d.weight) for d in smart.deployments] == [("openai", 3), ("anthropic", 1)]

    # The documented output line for the smart route is what apply prints.
    providers = [{"name": "openai", "kind": "openai"}, {"name": "anthropic", "kind": "anthropic"}]
    smart_route = example["routes"][1]
    before = {k: v for k, v in smart_route.items() if k not in ("retries", "fallback_on")}
    for route in (before | {"strategy": "ordered"}, smart_route):
        out, _ = apply(
            tmp_path, yaml.safe_dump({"version": 1, "providers": providers, "routes": [route]})
        )
    documented = next(line for line in doc.splitlines() if line.startswith("~ route smart:"))
    assert out.splitlines() == [documented, "applied 1 change(s)"]

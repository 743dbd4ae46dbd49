"""`manage.py gateway`: a route's response-cache settings (the ``cache:`` block)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management.base import CommandError

from aigateway.config_as_code.schema import parse_data
from aigateway.config_as_code.specs import ROUTE_SETTINGS
from aigateway.routing.models import Deployment, Route
from providers.models import Provider
from tests.config_as_code.support import apply, counts, gateway

pytestmark = pytest.mark.django_db

CACHED = """
version: 1
providers:
  - {name: openai, kind: openai}
routes:
  - name: cached
    cache: {mode: always, scope: org, ttl_seconds: 86400, semantic: true, semantic_threshold: 0.95}
    deployments:
      - {provider: openai, model: gpt-4o}
"""

SETTINGS = {
    "cache_mode": "always",
    "cache_scope": "org",
    "cache_ttl_seconds": 86400,
    "semantic_cache": True,
    "semantic_threshold": 0.95,
}
DEFAULTS = {name: default for block, _, name, default in ROUTE_SETTINGS if block == "cache"}
DEFAULT_BLOCK = {
    "mode": "deterministic",
    "scope": "team",
    "ttl_seconds": 3600,
    "semantic": False,
    "semantic_threshold": 0.97,
}


def cache_settings(name: str = "cached") -> dict[str, Any]:
    return dict(Route.objects.filter(name=name).values(*SETTINGS).get())


def test_the_defaults_are_the_models() -> None:
    # The model's defaults (CacheMode.DETERMINISTIC == "deterministic").
    models = {name: Route._meta.get_field(name).default for name in SETTINGS}
    assert models == DEFAULTS
    assert list(DEFAULTS) == list(SETTINGS)


def test_cache_settings_round_trip(tmp_path: Path) -> None:
    out, _ = apply(tmp_path, CACHED)
    assert "+ route cached" in out
    assert cache_settings() == SETTINGS

    exported, _ = gateway("export")
    route = yaml.safe_load(exported)["routes"][0]
    assert list(route) == [
        "name",
        "description",
        "strategy",
        "retries",
        "fallback_on",
        "cache",
        "deployments",
    ]
    assert route["cache"] == {
        "mode": "always",
        "scope": "org",
        "ttl_seconds": 86400,
        "semantic": True,
        "semantic_threshold": 0.95,
    }
    assert list(route["cache"]) == list(DEFAULT_BLOCK)  # deterministic order
    assert apply(tmp_path, exported)[0].strip() == "no changes"
    assert apply(tmp_path, CACHED)[0].strip() == "no changes"
    assert gateway("export")[0] == exported


def test_export_always_writes_the_cache_block(tmp_path: Path) -> None:
    demo = Provider.objects.create(name="demo", kind="demo")
    route = Route.objects.create(name="plain")
    Deployment.objects.create(route=route, provider=demo, upstream_model="demo")
    exported, _ = gateway("export")
    assert yaml.safe_load(exported)["routes"][0]["cache"] == DEFAULT_BLOCK
    assert "    cache:\n      mode: deterministic\n      scope: team\n" in exported  # block style
    assert apply(tmp_path, exported)[0].strip() == "no changes"


def test_mode_off_round_trips_quoted_or_not(tmp_path: Path) -> None:
    # Unquoted, YAML 1.1 reads `off` as false: accepted as the mode `off`.
    apply(tmp_path, CACHED.replace("mode: always", "mode: off"))
    assert cache_settings()["cache_mode"] == "off"
    exported, _ = gateway("export")
    assert "      mode: 'off'\n" in exported  # export quotes it
    assert yaml.safe_load(exported)["routes"][0]["cache"]["mode"] == "off"
    assert apply(tmp_path, exported)[0].strip() == "no changes"
    assert apply(tmp_path, CACHED.replace("mode: always", 'mode: "off"'))[0].strip() == (
        "no changes"
    )


def test_changed_cache_settings_are_shown_in_the_dry_run(tmp_path: Path) -> None:
    apply(tmp_path, CACHED)
    changed = (
        CACHED.replace("mode: always", "mode: deterministic")
        .replace("scope: org", "scope: key")
        .replace("ttl_seconds: 86400", "ttl_seconds: 600")
        .replace("semantic: true", "semantic: false")
        .replace("semantic_threshold: 0.95", "semantic_threshold: 0.9")
    )
    planned, _ = apply(tmp_path, changed, "--dry-run")
    line = (
        "~ route cached: cache.mode 'always' → 'deterministic'; cache.scope 'org' → 'key'; "
        "cache.ttl_seconds 86400 → 600; cache.semantic true → false; "
        "cache.semantic_threshold 0.95 → 0.9"
    )
    assert planned.splitlines()[0] == line
    assert cache_settings() == SETTINGS  # nothing written
    done, _ = apply(tmp_path, changed)
    assert planned.splitlines()[:-1] == done.splitlines()[:-1]
    assert cache_settings() == {
        "cache_mode": "deterministic",
        "cache_scope": "key",
        "cache_ttl_seconds": 600,
        "semantic_cache": False,
        "semantic_threshold": 0.9,
    }
    assert apply(tmp_path, changed)[0].strip() == "no changes"


def test_omitted_block_and_keys_mean_the_defaults(tmp_path: Path) -> None:
    apply(tmp_path, CACHED)
    partial = CACHED.replace(
        "{mode: always, scope: org, ttl_seconds: 86400, semantic: true, semantic_threshold: 0.95}",
        "{scope: org}",
    )
    out, _ = apply(tmp_path, partial)
    assert out.splitlines()[0] == (
        "~ route cached: cache.mode 'always' → 'deterministic'; cache.ttl_seconds 86400 → 3600; "
        "cache.semantic true → false; cache.semantic_threshold 0.95 → 0.97"
    )
    without = "\n".join(line for line in CACHED.splitlines() if "cache:" not in line)
    out, _ = apply(tmp_path, without + "\n")
    assert out.splitlines()[0] == "~ route cached: cache.scope 'org' → 'team'"
    assert cache_settings() == DEFAULTS


ROUTE = "version: 1\nroutes:\n  - name: r\n"
MODES = "off, deterministic, always"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            "    cache: {mode: sometimes}",
            f"routes[0].cache.mode: 'sometimes' is not one of: {MODES}",
        ),
        ("    cache: {mode: on}", f"routes[0].cache.mode: must be one of: {MODES}"),
        ("    cache: {mode: 1}", "routes[0].cache.mode: must be a string, not int"),
        ("    cache: {scope: user}", "routes[0].cache.scope: 'user' is not one of: key, team, org"),
        (
            "    cache: {scope: organisation}",
            "routes[0].cache.scope: 'organisation' is not one of: key, team, org",
        ),
        (
            "    cache: {ttl_seconds: 0}",
            "routes[0].cache.ttl_seconds: must be an integer from 1 to 604800",
        ),
        (
            "    cache: {ttl_seconds: 604801}",
            "routes[0].cache.ttl_seconds: must be an integer from 1 to 604800",
        ),
        (
            "    cache: {ttl_seconds: 60.5}",
            "routes[0].cache.ttl_seconds: must be an integer from 1 to 604800",
        ),
        (
            '    cache: {ttl_seconds: "3600"}',
            "routes[0].cache.ttl_seconds: must be an integer from 1 to 604800",
        ),
        (
            "    cache: {ttl_seconds: true}",
            "routes[0].cache.ttl_seconds: must be an integer from 1 to 604800",
        ),
        ('    cache: {semantic: "yes"}', "routes[0].cache.semantic: must be true or false"),
        ("    cache: {semantic: 1}", "routes[0].cache.semantic: must be true or false"),
        (
            "    cache: {semantic_threshold: 0.49}",
            "routes[0].cache.semantic_threshold: must be a number from 0.5 to 1.0",
        ),
        (
            "    cache: {semantic_threshold: 1.01}",
            "routes[0].cache.semantic_threshold: must be a number from 0.5 to 1.0",
        ),
        (
            '    cache: {semantic_threshold: "0.9"}',
            "routes[0].cache.semantic_threshold: must be a number",
        ),
        (
            "    cache: {semantic_threshold: .nan}",
            "routes[0].cache.semantic_threshold: must be a finite number",
        ),
        ("    cache: {ttl: 60}", "routes[0].cache.ttl: unknown field (expected one of: mode,"),
        ("    cache: true", "routes[0].cache: must be a mapping"),
    ],
)
def test_invalid_cache_settings_name_the_path(tmp_path: Path, fields: str, message: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        apply(tmp_path, ROUTE + fields + "\n")
    assert message in str(excinfo.value)
    assert counts() == (0,) * 8


@pytest.mark.parametrize(
    "fields",
    [
        "    cache: {ttl_seconds: 1, semantic_threshold: 0.5}",
        "    cache: {ttl_seconds: 604800, semantic_threshold: 1}",
        "    cache: {mode: 'off', scope: key}",
        "    cache: {mode: always, scope: org, semantic: true}",
        "    cache:",  # a null block: the defaults
        "    cache: {}",
    ],
)
def test_boundary_values_are_accepted(tmp_path: Path, fields: str) -> None:
    text = "version: 1\nproviders: [{name: demo, kind: demo}]\nroutes:\n  - name: r\n" + fields
    assert "+ route r" in apply(tmp_path, text + "\n")[0]
    assert apply(tmp_path, text + "\n")[0].strip() == "no changes"


def test_the_documented_cache_blocks_and_diff_line(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "config-as-code.md").read_text()
    example = yaml.safe_load(doc.split("```yaml\n", 1)[1].split("```", 1)[0])
    routes = {r.name: r for r in parse_data(example).routes}
    cache = {name: routes["gpt-4o"].settings[name] for name in SETTINGS}
    assert cache == DEFAULTS  # the fully written block shows the defaults
    sonnet = routes["claude-sonnet"]
    assert {name: sonnet.settings[name] for name in SETTINGS} == DEFAULTS | {
        "cache_mode": "always",
        "cache_scope": "org",
        "cache_ttl_seconds": 86400,
    }

    # The documented output line for the claude-sonnet route is what apply prints.
    providers = [{"name": "anthropic", "kind": "anthropic"}]
    route = next(r for r in example["routes"] if r["name"] == "claude-sonnet")
    before = {k: v for k, v in route.items() if k != "cache"}
    for declared in (before, route):
        out, _ = apply(
            tmp_path, yaml.safe_dump({"version": 1, "providers": providers, "routes": [declared]})
        )
    documented = next(
        line for line in doc.splitlines() if line.startswith("~ route claude-sonnet:")
    )
    assert out.splitlines() == [documented, "applied 1 change(s)"]

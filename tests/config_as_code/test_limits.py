"""`manage.py gateway`: the top-level ``limits:`` list (targets by name, set exactly for the
listed limits, others left alone, audited through the service, exported and re-applied)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from aigateway.audit.models import AuditEvent
from aigateway.quotas.models import Limit
from aigateway.quotas.services import limit_set
from aigateway.routing.models import Deployment
from auth.models import ApiKey, Organisation, Team
from tests.config_as_code.support import apply, gateway

pytestmark = pytest.mark.django_db

BASE = """
version: 1
providers:
  - {name: demo, kind: demo}
  - {name: local-vllm, kind: openai_compatible, base_url: "http://vllm.internal:8000/v1"}
routes:
  - name: demo
    deployments:
      - {provider: demo, model: demo}
      - {provider: local-vllm, model: meta-llama/Llama-3.1-70B-Instruct}
organisations:
  - slug: acme
    name: Acme
    members:
      - {user: alice, role: platform_admin}
    teams:
      - slug: research
        name: Research
        routes: [demo]
        members:
          - {user: carol, role: member}
        api_keys:
          - name: ci
"""

LIMITS = """
limits:
  - {scope: org, target: acme, kind: cost_month, value: "500.50"}
  - {scope: team, target: acme/research, kind: tpm, value: 100000, burst: 150000,
     soft_threshold_percent: 80}
  - {scope: key, target: acme/research/ci, kind: rpm, value: 60}
  - {scope: user, target: carol, kind: concurrent, value: 2, soft_threshold_percent: 90}
  - {scope: deployment, target: demo/demo:demo, kind: rpm, value: 600}
  - {scope: deployment, target: "demo/local-vllm:meta-llama/Llama-3.1-70B-Instruct",
     kind: tpm, value: 50000, enabled: false}
"""


def limits() -> dict[tuple[str, str], tuple]:
    """(scope, kind) → (value, burst, soft %, enabled, target id)."""
    return {
        (x.scope, x.kind): (x.value, x.burst, x.soft_threshold_percent, x.enabled, x.scope_id)
        for x in Limit.objects.all()
    }


def fails(tmp_path: Path, text: str) -> str:
    with pytest.raises(CommandError) as error:
        apply(tmp_path, text)
    return str(error.value)


def test_limits_on_targets_declared_in_the_same_file(tmp_path: Path) -> None:
    out, _ = apply(tmp_path, BASE + LIMITS)

    assert "+ limit org acme cost_month: 500.5, soft threshold 80%" in out
    assert "+ limit team acme/research tpm: 100000, burst 150000, soft threshold 80%" in out
    assert "+ limit deployment demo/demo:demo rpm: 600, soft threshold 80%" in out
    assert (
        "+ limit deployment demo/local-vllm:meta-llama/Llama-3.1-70B-Instruct tpm: 50000, "
        "soft threshold 80%, disabled" in out
    )
    team = Team.objects.get(slug="research")
    demo = Deployment.objects.get(route__name="demo", provider__name="demo")
    vllm = Deployment.objects.get(route__name="demo", provider__name="local-vllm")
    assert limits() == {
        ("org", "cost_month"): (Decimal("500.5"), None, 80, True,
                                Organisation.objects.get(slug="acme").pk),
        ("team", "tpm"): (100000, 150000, 80, True, team.pk),
        ("key", "rpm"): (60, None, 80, True, ApiKey.objects.get(name="ci").pk),
        ("user", "concurrent"): (2, None, 90, True,
                                 get_user_model().objects.get(username="carol").pk),
        ("deployment", "rpm"): (600, None, 80, True, demo.pk),
        ("deployment", "tpm"): (50000, None, 80, False, vllm.pk),
    }  # fmt: skip


def test_changes_go_through_the_service_and_are_audited(tmp_path: Path) -> None:
    apply(tmp_path, BASE + LIMITS)

    events = AuditEvent.objects.filter(action="limit.set")
    assert events.count() == 6
    event = events.get(target_label="tokens per minute on team acme/research")
    assert event.actor is None and event.actor_label == "cli"
    assert event.details["before"] is None
    assert event.details["after"] == {
        "value": "100000", "burst": "150000", "soft_threshold_percent": 80, "enabled": True
    }  # fmt: skip


def test_a_second_apply_changes_nothing(tmp_path: Path) -> None:
    apply(tmp_path, BASE + LIMITS)
    out, _ = apply(tmp_path, BASE + LIMITS)
    assert out.strip() == "no changes"
    assert AuditEvent.objects.filter(action="limit.set").count() == 6


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    apply(tmp_path, BASE)
    out, _ = apply(tmp_path, BASE + LIMITS, "--dry-run")
    assert "+ limit key acme/research/ci rpm: 60, soft threshold 80%" in out
    assert "nothing was written" in out
    assert Limit.objects.count() == 0


def test_listed_limits_are_set_exactly_and_others_left_alone(tmp_path: Path) -> None:
    apply(tmp_path, BASE + LIMITS)
    team = Team.objects.get(slug="research")
    limit_set(actor=None, scope="team", scope_id=team.pk, kind="rpm", value=42)  # from the UI

    changed = (
        BASE
        + """
limits:
  - {scope: team, target: acme/research, kind: tpm, value: 120000, soft_threshold_percent: 70}
  - {scope: key, target: acme/research/ci, kind: rpm, value: 60, enabled: false}
"""
    )
    planned, _ = apply(tmp_path, changed, "--dry-run")
    out, _ = apply(tmp_path, changed)

    assert (
        "~ limit team acme/research tpm: value 100000 → 120000; burst 150000 → none; "
        "soft_threshold_percent 80 → 70" in out
    )
    assert "~ limit key acme/research/ci rpm: enabled true → false" in out
    assert planned.splitlines()[:-1] == out.splitlines()[:-1]
    now = limits()
    assert now[("team", "tpm")][:4] == (120000, None, 70, True)
    assert now[("key", "rpm")][:4] == (60, None, 80, False)
    assert now[("team", "rpm")][0] == 42  # not in the file: left alone
    assert now[("org", "cost_month")][0] == Decimal("500.5")  # no longer listed: left alone
    assert len(now) == 7


def test_export_writes_limits_and_applies_back_without_changes(tmp_path: Path) -> None:
    apply(tmp_path, BASE + LIMITS)

    exported, _ = gateway("export")
    data = yaml.safe_load(exported)
    assert data["limits"] == [
        {"scope": "org", "target": "acme", "kind": "cost_month", "value": "500.5",
         "soft_threshold_percent": 80, "enabled": True},
        {"scope": "team", "target": "acme/research", "kind": "tpm", "value": 100000,
         "burst": 150000, "soft_threshold_percent": 80, "enabled": True},
        {"scope": "key", "target": "acme/research/ci", "kind": "rpm", "value": 60,
         "soft_threshold_percent": 80, "enabled": True},
        {"scope": "user", "target": "carol", "kind": "concurrent", "value": 2,
         "soft_threshold_percent": 90, "enabled": True},
        {"scope": "deployment", "target": "demo/demo:demo", "kind": "rpm", "value": 600,
         "soft_threshold_percent": 80, "enabled": True},
        {"scope": "deployment", "target": "demo/local-vllm:meta-llama/Llama-3.1-70B-Instruct",
         "kind": "tpm", "value": 50000, "soft_threshold_percent": 80, "enabled": False},
    ]  # fmt: skip
    out, _ = apply(tmp_path, exported)
    assert out.strip() == "no changes"
    assert gateway("export")[0] == exported


def test_export_skips_limits_whose_target_was_deleted(tmp_path: Path) -> None:
    apply(tmp_path, BASE + LIMITS)
    Team.objects.create(organisation=Organisation.objects.get(slug="acme"), slug="tmp", name="T")
    doomed = Team.objects.get(slug="tmp")
    limit_set(actor=None, scope="team", scope_id=doomed.pk, kind="rpm", value=5)
    doomed.delete()

    data = yaml.safe_load(gateway("export")[0])
    assert [x["target"] for x in data["limits"] if x["scope"] == "team"] == ["acme/research"]


def test_deployment_limits_follow_the_deployment_when_a_route_is_reordered(
    tmp_path: Path,
) -> None:
    apply(tmp_path, BASE + LIMITS)
    demo = Deployment.objects.get(route__name="demo", provider__name="demo")
    reordered = (BASE + LIMITS).replace(
        """      - {provider: demo, model: demo}
      - {provider: local-vllm, model: meta-llama/Llama-3.1-70B-Instruct}
""",
        """      - {provider: local-vllm, model: meta-llama/Llama-3.1-70B-Instruct}
      - {provider: demo, model: demo}
""",
    )
    out, _ = apply(tmp_path, reordered)
    assert "limit" not in out
    assert Limit.objects.get(scope="deployment", kind="rpm").scope_id == demo.pk


def test_targets_already_in_the_database(tmp_path: Path) -> None:
    apply(tmp_path, BASE)
    out, _ = apply(tmp_path, "version: 1\n" + LIMITS)  # nothing else declared
    assert out.count("+ limit") == 6
    assert Limit.objects.count() == 6


def test_a_route_and_a_model_with_slashes_that_read_two_ways_is_ambiguous(
    tmp_path: Path,
) -> None:
    routes = """
version: 1
providers:
  - {name: p, kind: demo}
routes:
  - name: r
    deployments: [{provider: p, model: "m/p:x"}]
  - name: "r/p:m"
    deployments: [{provider: p, model: x}]
"""
    error = fails(
        tmp_path,
        routes
        + """
limits:
  - {scope: deployment, target: "r/p:m/p:x", kind: rpm, value: 1}
""",
    )
    assert (
        "limits[0].target: 'r/p:m/p:x' is ambiguous (route 'r' → p:m/p:x, route 'r/p:m' → p:x)"
        in error
    )
    assert Limit.objects.count() == 0


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("{scope: galaxy, target: acme, kind: rpm, value: 1}",
         "limits[0].scope: 'galaxy' is not one of: org, team, key, user, deployment"),
        ("{scope: team, target: research, kind: rpm, value: 1}",
         "limits[0].target: 'research' is not ORG/TEAM (e.g. acme/research)"),
        ("{scope: key, target: acme/research, kind: rpm, value: 1}",
         "limits[0].target: 'acme/research' is not ORG/TEAM/KEY-NAME (e.g. acme/research/ci)"),
        ("{scope: deployment, target: demo, kind: rpm, value: 1}",
         "limits[0].target: 'demo' is not ROUTE/PROVIDER:MODEL (e.g. gpt-4o/openai:gpt-4o)"),
        ("{scope: team, target: acme/research, kind: rph, value: 1}",
         "limits[0].kind: 'rph' is not one of: rpm, tpm, concurrent"),
        ("{scope: team, target: acme/research, kind: rpm}", "limits[0].value: required"),
        ("{scope: team, target: acme/research, kind: rpm, value: true}",
         "limits[0].value: must be a number"),
        ("{scope: team, target: acme/research, kind: rpm, value: lots}",
         "limits[0].value: 'lots' is not a number"),
        ("{scope: team, target: acme/research, kind: rpm, value: 0}",
         "limits[0].value: the limit must be greater than zero"),
        ("{scope: team, target: acme/research, kind: tpm, value: 1.5}",
         "limits[0].value: the limit must be a whole number"),
        ("{scope: team, target: acme/research, kind: tpm, value: 100, burst: 50}",
         "limits[0].burst: the burst must be at least the limit (100)"),
        ("{scope: team, target: acme/research, kind: tokens_day, value: 100, burst: 500}",
         "limits[0].burst: a burst applies only to per-minute limits"),
        ("{scope: deployment, target: demo/demo:demo, kind: cost_day, value: 5}",
         "limits[0].kind: a deployment takes only per-minute limits"),
        ("{scope: team, target: acme/research, kind: rpm, value: 1, soft_threshold_percent: 0}",
         "limits[0].soft_threshold_percent: must be an integer from 1 to 100"),
        ("{scope: team, target: acme/research, kind: rpm, value: 1, enabled: yes please}",
         "limits[0].enabled: must be true or false"),
        ("{scope: team, target: acme/research, kind: rpm, value: 1, per: minute}",
         "limits[0].per: unknown field"),
        ("{scope: org, target: initech, kind: rpm, value: 1}",
         "limits[0].target: unknown organisation 'initech'"),
        ("{scope: team, target: acme/sales, kind: rpm, value: 1}",
         "limits[0].target: unknown team 'acme/sales'"),
        ("{scope: key, target: acme/research/nope, kind: rpm, value: 1}",
         "limits[0].target: unknown API key 'acme/research/nope'"),
        ("{scope: user, target: mallory, kind: rpm, value: 1}",
         "limits[0].target: unknown user 'mallory'"),
        ("{scope: deployment, target: demo/openai:gpt-4o, kind: rpm, value: 1}",
         "limits[0].target: route 'demo' has no deployment openai:gpt-4o"),
        ("{scope: deployment, target: smart/openai:gpt-4o, kind: rpm, value: 1}",
         "limits[0].target: no route matches 'smart/openai:gpt-4o'"),
    ],
)  # fmt: skip
def test_invalid_limits_are_reported_by_path(tmp_path: Path, limit: str, message: str) -> None:
    error = fails(tmp_path, BASE + f"limits:\n  - {limit}\n")
    assert message in error
    assert Organisation.objects.count() == 0  # all or nothing


def test_a_limit_listed_twice_is_an_error(tmp_path: Path) -> None:
    error = fails(
        tmp_path,
        BASE
        + """
limits:
  - {scope: team, target: acme/research, kind: rpm, value: 1}
  - {scope: key, target: acme/research/ci, kind: rpm, value: 1}
  - {scope: team, target: acme/research, kind: rpm, value: 2}
""",
    )
    assert "limits[2]: duplicate limit: rpm on team 'acme/research' is declared at limits[0]" in (
        error
    )


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_documented_example_and_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from providers.models import Provider
    from providers.services import credential_create

    doc = (DOCS / "config-as-code.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    for name in ("OPENAI_BACKUP_KEY", "TEAM_RESEARCH_CI_KEY"):
        monkeypatch.setenv(name, f"value-of-{name}")
    openai = Provider.objects.create(name="openai", kind="openai")
    credential_create(provider=openai, name="legacy", secret="sk-legacy-0123456789")

    out, _ = apply(tmp_path, example)

    documented = [line for line in doc.splitlines() if line.startswith("+ limit ")]
    assert documented and all(line in out.splitlines() for line in documented)
    assert Limit.objects.count() == 5
    gpt4o = Deployment.objects.get(route__name="gpt-4o", provider__name="openai")
    assert Limit.objects.get(scope="deployment").scope_id == gpt4o.pk


def test_the_example_in_quotas_md_parses() -> None:
    from aigateway.config_as_code.schema import parse_data

    doc = (DOCS / "quotas.md").read_text()
    block = doc.split("## The file format", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_data({"version": 1, **yaml.safe_load(block)})
    assert [(x.scope, x.kind) for x in config.limits] == [
        ("org", "cost_month"),
        ("team", "tpm"),
        ("key", "rpm"),
        ("user", "concurrent"),
        ("deployment", "tpm"),
    ]

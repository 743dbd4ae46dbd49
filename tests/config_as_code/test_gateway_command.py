"""`manage.py gateway export|apply|reencrypt`: configuration as code."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from aigateway.audit.models import AuditEvent
from aigateway.routing.models import Deployment, Route
from auth.keys import hash_api_key
from auth.models import ApiKey, Organisation, OrgMembership, Team, TeamMembership
from auth.services import api_key_create, api_key_revoke
from providers.models import Credential, CredentialStatus, ModelPrice, Provider
from providers.services import credential_create
from tests.config_as_code.support import apply, counts, gateway, write

pytestmark = pytest.mark.django_db

CI_KEY = "agw-imported-ci-key-0123456789abcdef"
BACKUP_SECRET = "sk-backup-secret-value-987654321"

FULL = """
version: 1
providers:
  - name: openai
    kind: openai
    base_url: ""
    enabled: true
    credentials:
      - name: primary
        secret: env:OPENAI_API_KEY
      - name: backup
        secret: env:OPENAI_BACKUP_KEY
        store: encrypted
  - name: demo
    kind: demo
routes:
  - name: gpt-4o
    description: "The big one"
    strategy: ordered
    deployments:
      - provider: openai
        model: gpt-4o
        credential: primary
        weight: 1
        enabled: true
      - provider: demo
        model: demo
  - name: demo
    deployments:
      - provider: demo
        model: demo
organisations:
  - slug: acme
    name: Acme
    members:
      - user: alice@acme.test
        role: platform_admin
    teams:
      - slug: research
        name: Research
        routes: [gpt-4o, demo]
        members:
          - user: bob@acme.test
            role: team_admin
        api_keys:
          - name: ci
            secret: env:TEAM_RESEARCH_CI_KEY
            routes: [gpt-4o]
            expires_at: 2027-01-01T00:00:00Z
          - name: generated
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BACKUP_KEY", BACKUP_SECRET)
    monkeypatch.setenv("TEAM_RESEARCH_CI_KEY", CI_KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # references need not be set


# -- export -----------------------------------------------------------------------------------
def test_export_of_an_empty_database() -> None:
    out, _ = gateway("export")
    assert yaml.safe_load(out) == {
        "version": 1,
        "providers": [],
        "routes": [],
        "prices": [],
        "organisations": [],
        "limits": [],
        "guardrails": [],
    }


# -- apply ------------------------------------------------------------------------------------
def test_apply_creates_everything(tmp_path: Path, env: None) -> None:
    out, err = apply(tmp_path, FULL)

    assert "+ provider openai" in out and "+ route gpt-4o" in out
    assert "+ api key acme/research/ci" in out
    openai = Provider.objects.get(name="openai")
    primary = openai.credentials.get(name="primary")
    assert (primary.env_var, primary.ciphertext) == ("OPENAI_API_KEY", "")
    backup = openai.credentials.get(name="backup")
    assert backup.env_var == "" and backup.ciphertext and backup.reveal() == BACKUP_SECRET
    route = Route.objects.get(name="gpt-4o")
    assert route.description == "The big one"
    deployments = list(route.deployments.order_by("priority"))
    assert [(d.provider.name, d.upstream_model, d.priority) for d in deployments] == [
        ("openai", "gpt-4o", 0),
        ("demo", "demo", 1),
    ]
    assert deployments[0].credential == primary and deployments[1].credential is None

    org = Organisation.objects.get(slug="acme")
    alice = get_user_model().objects.get(username="alice@acme.test")
    assert alice.email == "alice@acme.test" and not alice.has_usable_password()
    assert OrgMembership.objects.get(organisation=org, user=alice).role == "platform_admin"
    team = Team.objects.get(organisation=org, slug="research")
    assert sorted(team.allowed_routes.values_list("name", flat=True)) == ["demo", "gpt-4o"]
    assert (
        TeamMembership.objects.get(team=team, user__username="bob@acme.test").role == "team_admin"
    )

    key = ApiKey.objects.get(key_hash=hash_api_key(CI_KEY))  # the imported key works
    assert (key.team, key.name, key.prefix) == (team, "ci", CI_KEY[:12])
    assert key.expires_at.isoformat() == "2027-01-01T00:00:00+00:00"
    assert list(key.allowed_routes.values_list("name", flat=True)) == ["gpt-4o"]
    assert CI_KEY not in out + err and BACKUP_SECRET not in out + err

    # The generated key is shown once, on stderr, and is the one stored.
    line = next(x for x in err.splitlines() if "acme/research/generated" in x)
    assert line.startswith("created API key acme/research/generated: agw-")
    assert line.endswith("(shown once)")
    raw = line.split(": ", 1)[1].split()[0]
    assert ApiKey.objects.get(key_hash=hash_api_key(raw)).name == "generated"


def test_second_apply_reports_no_changes(tmp_path: Path, env: None) -> None:
    apply(tmp_path, FULL)
    before = counts()
    out, err = apply(tmp_path, FULL)
    assert out.strip() == "no changes" and err == ""
    assert counts() == before


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path, env: None) -> None:
    out, err = apply(tmp_path, FULL, "--dry-run")
    assert "+ provider openai" in out
    assert "+ credential openai/backup: encrypted from env:OPENAI_BACKUP_KEY" in out
    assert "+ route gpt-4o: deployments [openai:gpt-4o (credential primary), demo:demo]" in out
    assert "+ user alice@acme.test" in out
    assert "+ api key acme/research/generated: new key, shown once" in out
    assert "nothing was written" in out and err == ""
    assert counts() == (0,) * 8


def test_dry_run_of_changes_matches_what_apply_does(tmp_path: Path, env: None) -> None:
    apply(tmp_path, FULL)
    changed = FULL.replace('base_url: ""', 'base_url: "https://api.example.test/v1"')
    planned, _ = apply(tmp_path, changed, "--dry-run")
    assert Provider.objects.get(name="openai").base_url == ""
    done, _ = apply(tmp_path, changed)
    line = "~ provider openai: base_url '' → 'https://api.example.test/v1'"
    assert line in planned and line in done
    assert planned.splitlines()[:-1] == done.splitlines()[:-1]  # all but the summary line
    assert Provider.objects.get(name="openai").base_url == "https://api.example.test/v1"


def test_reordering_deployments_updates_priorities(tmp_path: Path, env: None) -> None:
    apply(tmp_path, FULL)
    ids = dict(Deployment.objects.values_list("provider__name", "id").filter(route__name="gpt-4o"))
    swapped = FULL.replace(
        """      - provider: openai
        model: gpt-4o
        credential: primary
        weight: 1
        enabled: true
      - provider: demo
        model: demo
""",
        """      - provider: demo
        model: demo
      - provider: openai
        model: gpt-4o
        credential: primary
""",
    )
    out, _ = apply(tmp_path, swapped)
    assert "~ route gpt-4o: deployments [openai:gpt-4o (credential primary), demo:demo] → " in out
    rows = Deployment.objects.filter(route__name="gpt-4o").order_by("priority")
    assert [(d.provider.name, d.priority) for d in rows] == [("demo", 0), ("openai", 1)]
    assert {d.provider.name: d.id for d in rows} == ids  # rows reused, ids stable
    assert apply(tmp_path, swapped)[0].strip() == "no changes"


def test_credential_removed_from_the_file_is_retired_not_deleted(tmp_path: Path, env: None) -> None:
    apply(tmp_path, FULL)
    without_backup = FULL.replace(
        "      - name: backup\n        secret: env:OPENAI_BACKUP_KEY\n        store: encrypted\n",
        "",
    )
    out, _ = apply(tmp_path, without_backup)
    assert "- credential openai/backup: retired" in out
    backup = Credential.objects.get(provider__name="openai", name="backup")
    assert backup.status == CredentialStatus.RETIRED
    assert apply(tmp_path, without_backup)[0].strip() == "no changes"
    # Declaring it again reactivates it.
    assert "status retired → active" in apply(tmp_path, FULL)[0]


def test_members_and_team_routes_are_set_exactly(tmp_path: Path, cast: Any) -> None:
    out, _ = apply(
        tmp_path,
        """
        version: 1
        organisations:
          - slug: acme
            name: Acme
            members:
              - {user: alice, role: auditor}
            teams:
              - slug: research
                name: Research
                members:
                  - {user: carol@example.test, role: team_admin}
    """,
    )
    assert "~ org member acme/alice: role platform_admin → auditor" in out
    assert "- org member acme/dave: removed" in out
    assert "- team member acme/research/bob: removed" in out
    assert "~ team member acme/research/carol@example.test: role member → team_admin" in out
    assert list(
        OrgMembership.objects.filter(organisation__slug="acme").values_list(
            "user__username", "role"
        )
    ) == [("alice", "auditor")]
    assert list(
        TeamMembership.objects.filter(team__slug="research").values_list("user__username", "role")
    ) == [("carol", "team_admin")]
    assert Organisation.objects.get(slug="globex").memberships.count() == 0  # other org untouched
    assert TeamMembership.objects.filter(team__slug="sales").count() == 1


def test_changed_api_key_secret_rekeys_without_printing_it(
    tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(tmp_path, FULL)
    monkeypatch.setenv("TEAM_RESEARCH_CI_KEY", "agw-rotated-ci-key-abcdef")
    out, err = apply(tmp_path, FULL)
    assert out.splitlines()[0] == "~ api key acme/research/ci: secret changed"
    assert "agw-rotated" not in out + err
    assert ApiKey.objects.get(key_hash=hash_api_key("agw-rotated-ci-key-abcdef")).name == "ci"
    assert not ApiKey.objects.filter(key_hash=hash_api_key(CI_KEY)).exists()


def test_changed_encrypted_credential_is_reencrypted(
    tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(tmp_path, FULL)
    monkeypatch.setenv("OPENAI_BACKUP_KEY", "sk-new-backup-value-555555")
    out, _ = apply(tmp_path, FULL)
    assert out.splitlines()[0] == "~ credential openai/backup: secret changed"
    assert Credential.objects.get(name="backup").reveal() == "sk-new-backup-value-555555"
    switched = FULL.replace("secret: env:OPENAI_API_KEY", "secret: env:OPENAI_API_KEY_2")
    out, _ = apply(tmp_path, switched)
    assert "~ credential openai/primary: secret env:OPENAI_API_KEY → env:OPENAI_API_KEY_2" in out


def test_two_keys_cannot_share_a_secret(tmp_path: Path, env: None) -> None:
    text = FULL.replace(
        "- name: generated", "- name: twin\n            secret: env:TEAM_RESEARCH_CI_KEY"
    )
    with pytest.raises(
        CommandError, match=r"api_keys\[1\]\.secret: env:TEAM_RESEARCH_CI_KEY holds"
    ):
        apply(tmp_path, text)


def test_undeclared_keys_are_left_alone_unless_pruned(tmp_path: Path, env: None) -> None:
    apply(tmp_path, FULL)
    team = Team.objects.get(slug="research")
    ui_key = api_key_create(team=team, name="from-the-ui").api_key
    assert apply(tmp_path, FULL)[0].strip() == "no changes"
    out, _ = apply(tmp_path, FULL, "--prune-keys")
    assert "- api key acme/research/from-the-ui: revoked (not in the file; --prune-keys)" in out
    ui_key.refresh_from_db()
    assert ui_key.revoked_at is not None


def test_revoking_a_key_and_revoked_keys_stay_revoked(tmp_path: Path, env: None) -> None:
    apply(tmp_path, FULL)
    revoked = FULL.replace(
        "          - name: generated\n", "          - name: generated\n            revoked: true\n"
    )
    assert "- api key acme/research/generated: revoked" in apply(tmp_path, revoked)[0]
    assert ApiKey.objects.get(name="generated").revoked_at is not None
    with pytest.raises(CommandError, match="revocation cannot be undone"):
        apply(tmp_path, FULL)


def test_the_documented_example_applies_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "config-as-code.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    for name in ("OPENAI_BACKUP_KEY", "TEAM_RESEARCH_CI_KEY"):
        monkeypatch.setenv(name, f"value-of-{name}")
    openai = Provider.objects.create(name="openai", kind="openai")
    credential_create(provider=openai, name="legacy", secret="sk-legacy-0123456789")
    out, _ = apply(tmp_path, example)
    assert "+ route gpt-4o" in out and "+ api key acme/research/notebook: revoked" in out
    assert ApiKey.objects.get(name="notebook").revoked_at is not None
    azure = Provider.objects.get(name="azure")
    assert (azure.kind, azure.options["auth"], azure.rotation_days) == (
        "azure_openai",
        "entra_id",
        30,
    )
    assert Provider.objects.get(name="anthropic").kind == "anthropic"
    assert ModelPrice.objects.get(provider=None, model="gpt-4o").output_per_million == 10
    assert AuditEvent.objects.filter(action="credential.created").count() == 6
    assert apply(tmp_path, example)[0].strip() == "no changes"
    exported, _ = gateway("export")
    assert apply(tmp_path, exported)[0].strip() == "no changes"


# -- validation -------------------------------------------------------------------------------
def test_literal_secrets_are_rejected(tmp_path: Path) -> None:
    text = """
        version: 1
        providers:
          - name: openai
            kind: openai
            credentials:
              - name: primary
                secret: sk-live-literal-secret-123456
    """
    with pytest.raises(CommandError) as excinfo:
        apply(tmp_path, text)
    message = str(excinfo.value)
    assert "providers[0].credentials[0].secret: literal secrets are not allowed" in message
    assert "use env:" in message and "sk-live" not in message
    key_text = FULL.replace("secret: env:TEAM_RESEARCH_CI_KEY", "secret: agw-literal-key-1234")
    with pytest.raises(CommandError, match=r"api_keys\[0\]\.secret: literal secrets .* use env:"):
        apply(tmp_path, key_text)
    assert counts() == (0,) * 8


def test_missing_env_var_is_rejected_and_nothing_is_written(
    tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEAM_RESEARCH_CI_KEY")
    with pytest.raises(CommandError, match="TEAM_RESEARCH_CI_KEY is not set"):
        apply(tmp_path, FULL)
    monkeypatch.setenv("TEAM_RESEARCH_CI_KEY", CI_KEY)
    monkeypatch.delenv("OPENAI_BACKUP_KEY")
    with pytest.raises(CommandError, match=r"credentials\[1\]\.secret: .*OPENAI_BACKUP_KEY"):
        apply(tmp_path, FULL)
    assert counts() == (0,) * 8


def test_a_failure_midway_rolls_everything_back(
    tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(**kwargs: object) -> None:
        raise ValueError("simulated failure")

    monkeypatch.setattr("aigateway.config_as_code.tenancy.api_key_create", boom)
    with pytest.raises(CommandError, match="nothing was changed: simulated failure"):
        apply(tmp_path, FULL)
    assert counts() == (0,) * 8


def test_unknown_provider_in_a_route_is_rejected_with_its_path(tmp_path: Path, env: None) -> None:
    text = FULL.replace(
        "  - name: demo\n    deployments:\n      - provider: demo",
        "  - name: demo\n    deployments:\n      - provider: foo",
    )
    with pytest.raises(CommandError) as excinfo:
        apply(tmp_path, text)
    assert "routes[1].deployments[0].provider: unknown provider 'foo'" in str(excinfo.value)
    assert counts() == (0,) * 8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2", "version: must be 1"),
        ("version: 1\nprovider: []", "provider: unknown field"),
        (
            "version: 1\nroutes:\n  - name: x\n    deployments:\n      - {provider: demo, "
            "model: m, weight: -1}",
            "routes[0].deployments[0].weight: must be an integer >= 0",
        ),
        ("version: 1\nproviders:\n  - {name: a, kind: nope}", "providers[0].kind: 'nope' is not"),
        ("version: 1\nroutes: [{name: a}, {name: a}]", "routes[1].name: duplicate route 'a'"),
        (
            "version: 1\norganisations: [{slug: o, name: O, teams: [{slug: t, name: T, "
            "routes: [ghost]}]}]",
            "organisations[0].teams[0].routes[0]: unknown route 'ghost'",
        ),
        (
            "version: 1\nproviders:\n  - {name: a, kind: demo, credentials: [{name: c, "
            "secret: stored}]}",
            "'stored' keeps an encrypted secret already in the database",
        ),
        ("version: 1\nproviders: [", "not valid YAML at line"),
    ],
)
def test_invalid_files_name_the_path(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        apply(tmp_path, text)
    assert message in str(excinfo.value)


def test_command_line_error_exits_non_zero_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nroutes: [{name: a}, {name: a}]")
    result = subprocess.run(
        [sys.executable, "manage.py", "gateway", "apply", path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        env=os.environ
        | {
            "AIGATEWAY_ALLOW_INSECURE_DEFAULTS": "true",
            # Its own throwaway database: never the developer's var/db.sqlite3.
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        },
    )
    assert result.returncode != 0
    assert "routes[1].name: duplicate route 'a'" in result.stderr
    assert "Traceback" not in result.stderr


# -- round trip and secrecy -------------------------------------------------------------------
def test_export_then_apply_is_a_no_op(tmp_path: Path, cast: Any, env: None) -> None:
    apply(tmp_path, FULL)
    api_key_revoke(api_key=ApiKey.objects.get(name="generated"))
    api_key_create(team=Team.objects.get(slug="sales"), name="ui-key", route_names=["demo"])
    exported, _ = gateway("export")
    assert "revoked: true" in exported and "secret: stored" in exported
    assert "secret: env:OPENAI_API_KEY" in exported and "prefix: agw-" in exported
    out, _ = apply(tmp_path, exported)
    assert out.strip() == "no changes"
    assert gateway("export")[0] == exported  # deterministic


def test_export_never_contains_a_plaintext_secret(tmp_path: Path, cast: Any) -> None:
    provider = Provider.objects.create(name="openai", kind="openai")
    credential_create(provider=provider, name="primary", secret="sk-test-abcdef123456789")
    issued = api_key_create(team=cast.team, name="ci")
    out, _ = gateway("export")
    assert "sk-test-abcdef123456789" not in out
    assert issued.raw_key not in out and issued.api_key.key_hash not in out
    assert yaml.safe_load(out)["providers"][0]["credentials"] == [
        {"name": "primary", "secret": "stored"}
    ]


def test_apply_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", StringIO("version: 1\nproviders: [{name: demo, kind: demo}]"))
    out, _ = gateway("apply", "-")
    assert out.splitlines()[0] == "+ provider demo"
    assert Provider.objects.filter(name="demo", kind="demo").exists()


def test_export_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    gateway("export", "--output", str(target))
    assert yaml.safe_load(target.read_text())["version"] == 1


# -- reencrypt --------------------------------------------------------------------------------
def test_reencrypt_moves_secrets_to_the_new_primary_key(settings: Any) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.AIGATEWAY_ENCRYPTION_KEYS = [old_key]
    provider = Provider.objects.create(name="openai", kind="openai")
    credential = credential_create(provider=provider, name="primary", secret="sk-rotate-me-12345")
    credential_create(provider=provider, name="env-only", env_var="SOME_VAR")
    before = credential.ciphertext

    settings.AIGATEWAY_ENCRYPTION_KEYS = [new_key, old_key]
    out, _ = gateway("reencrypt")
    assert out.strip() == "re-encrypted 1 credential(s) under the primary key"

    settings.AIGATEWAY_ENCRYPTION_KEYS = [new_key]
    credential.refresh_from_db()
    assert credential.ciphertext != before
    assert credential.reveal() == "sk-rotate-me-12345"


def test_reencrypt_without_the_old_key_fails_cleanly(settings: Any) -> None:
    settings.AIGATEWAY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    provider = Provider.objects.create(name="openai", kind="openai")
    credential = credential_create(provider=provider, name="primary", secret="sk-lost-key-12345")
    settings.AIGATEWAY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="nothing was changed"):
        gateway("reencrypt")
    assert Credential.objects.get(pk=credential.pk).ciphertext == credential.ciphertext

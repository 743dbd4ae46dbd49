"""`manage.py gateway`: provider options and rotation_days, prices, audited credentials."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.core.management.base import CommandError
from django.db.models import F
from django.utils import timezone

from aigateway.audit.models import AuditEvent
from providers.models import Credential, CredentialStatus, ModelPrice, Provider
from providers.services import credential_activate, credential_create
from tests.config_as_code.support import apply, counts, gateway

pytestmark = pytest.mark.django_db

AZURE = """
version: 1
providers:
  - name: azure
    kind: azure_openai
    base_url: "https://contoso.openai.azure.com"
    options:
      tenant_id: 00000000-0000-0000-0000-000000000001
      auth: entra_id
      client_id: 00000000-0000-0000-0000-000000000002
      authority_url: "https://login.microsoftonline.com"
      api_version: "2024-10-21"
    rotation_days: 30
    credentials:
      - name: client-secret
        secret: env:AZURE_CLIENT_SECRET
  - name: anthropic
    kind: anthropic
    credentials:
      - name: primary
        secret: env:ANTHROPIC_API_KEY
"""

PRICES = """
version: 1
providers:
  - name: openai
    kind: openai
prices:
  - provider: openai
    model: gpt-4o
    input_per_million: "2.50"
    output_per_million: "10.00"
  - model: gpt-4o
    input_per_million: 3
    output_per_million: 12.5
"""

ENTRA_OPTIONS = {
    "api_version": "2024-10-21",
    "auth": "entra_id",
    "authority_url": "https://login.microsoftonline.com",
    "client_id": "00000000-0000-0000-0000-000000000002",
    "tenant_id": "00000000-0000-0000-0000-000000000001",
}


def events(action: str) -> list[str]:
    return sorted(AuditEvent.objects.filter(action=action).values_list("target_label", flat=True))


# -- options, rotation_days, kinds ------------------------------------------------------------
def test_azure_entra_provider_round_trips(tmp_path: Path) -> None:
    out, _ = apply(tmp_path, AZURE)
    assert "+ provider azure" in out and "+ provider anthropic" in out
    azure = Provider.objects.get(name="azure")
    assert (azure.kind, azure.options, azure.rotation_days) == ("azure_openai", ENTRA_OPTIONS, 30)
    assert Provider.objects.get(name="anthropic").rotation_days == 90  # the default
    due = azure.credentials.get(name="client-secret").rotation_due_at
    assert abs(due - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)

    exported, _ = gateway("export")
    provider = yaml.safe_load(exported)["providers"][1]
    assert provider["name"] == "azure" and provider["rotation_days"] == 30
    assert list(provider["options"]) == sorted(ENTRA_OPTIONS)  # exported sorted
    assert provider["options"] == ENTRA_OPTIONS  # the api_version stays a string
    assert apply(tmp_path, exported)[0].strip() == "no changes"
    assert apply(tmp_path, AZURE)[0].strip() == "no changes"
    assert gateway("export")[0] == exported


def test_option_changes_are_shown_name_by_name(tmp_path: Path) -> None:
    apply(tmp_path, AZURE)
    changed = AZURE.replace("auth: entra_id", "auth: api_key").replace(
        "      tenant_id: 00000000-0000-0000-0000-000000000001\n", ""
    )
    planned, _ = apply(tmp_path, changed, "--dry-run")
    line = (
        "~ provider azure: options.auth 'entra_id' → 'api_key'; "
        "options.tenant_id '00000000-0000-0000-0000-000000000001' → unset"
    )
    assert line in planned
    assert Provider.objects.get(name="azure").options == ENTRA_OPTIONS
    assert line in apply(tmp_path, changed)[0]
    assert "tenant_id" not in Provider.objects.get(name="azure").options


def test_options_are_compared_exactly(tmp_path: Path) -> None:
    text = "version: 1\nproviders:\n  - {name: p, kind: demo, options: {retries: 1}}\n"
    apply(tmp_path, text)
    out, _ = apply(tmp_path, text.replace("retries: 1", "retries: true"))
    assert "~ provider p: options.retries 1 → true" in out
    out, _ = apply(tmp_path, text.replace("{retries: 1}", "{}"))
    assert "~ provider p: options.retries true → unset" in out
    assert Provider.objects.get(name="p").options == {}


@pytest.mark.parametrize(
    ("options", "path"),
    [
        ("{client_secret: s3cr3t-value-123}", "providers[0].options.client_secret"),
        ("{api_key: s3cr3t-value-123}", "providers[0].options.api_key"),
        ("{Password: s3cr3t-value-123}", "providers[0].options.Password"),
        ("{access_token: s3cr3t-value-123}", "providers[0].options.access_token"),
        ("{headers: {X-Api-Key: s3cr3t-value-123}}", "providers[0].options.headers.X-Api-Key"),
    ],
)
def test_secret_looking_options_are_rejected(tmp_path: Path, options: str, path: str) -> None:
    text = f"version: 1\nproviders:\n  - {{name: azure, kind: azure_openai, options: {options}}}\n"
    with pytest.raises(CommandError) as excinfo:
        apply(tmp_path, text)
    message = str(excinfo.value)
    assert f"{path}: looks like a secret" in message and "credential" in message
    assert "s3cr3t" not in message
    assert counts() == (0,) * 8


def test_secret_looking_options_in_the_database_are_not_exported(tmp_path: Path) -> None:
    options = {"auth": "entra_id", "client_secret": "s3cr3t-value-123"}
    Provider.objects.create(name="azure", kind="azure_openai", options=options)
    out, err = gateway("export")
    assert "s3cr3t" not in out + err
    assert yaml.safe_load(out)["providers"][0]["options"] == {"auth": "entra_id"}
    assert "provider option azure.options.client_secret was not exported" in err
    planned, _ = apply(tmp_path, out, "--dry-run")
    assert "~ provider azure: options.client_secret (hidden) → unset" in planned


def test_rotation_days_changes_and_validation(tmp_path: Path) -> None:
    text = "version: 1\nproviders:\n  - {name: openai, kind: openai}\n"
    apply(tmp_path, text)
    assert Provider.objects.get(name="openai").rotation_days == 90
    out, _ = apply(tmp_path, text.replace("kind: openai", "kind: openai, rotation_days: 30"))
    assert "~ provider openai: rotation_days 90 → 30" in out
    assert Provider.objects.get(name="openai").rotation_days == 30
    with pytest.raises(CommandError, match=r"providers\[0\]\.rotation_days: must be an integer"):
        apply(tmp_path, text.replace("kind: openai", "kind: openai, rotation_days: 0"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("[a, b]", "providers[0].options: must be a mapping"),
        ("{when: 2027-01-01}", "providers[0].options.when: must be a string, number"),
    ],
)
def test_invalid_options(tmp_path: Path, options: str, message: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        apply(tmp_path, f"version: 1\nproviders: [{{name: p, kind: demo, options: {options}}}]")
    assert message in str(excinfo.value)


# -- prices -----------------------------------------------------------------------------------
def prices() -> list[tuple[str | None, str, Decimal, Decimal]]:
    # NULLs sort first on SQLite and last on PostgreSQL: say which.
    rows = ModelPrice.objects.order_by(F("provider__name").asc(nulls_first=True), "model")
    return [
        (r.provider and r.provider.name, r.model, r.input_per_million, r.output_per_million)
        for r in rows
    ]


def test_prices_dry_run_then_create(tmp_path: Path) -> None:
    planned, _ = apply(tmp_path, PRICES, "--dry-run")
    assert "+ price openai:gpt-4o: input 2.50, output 10.00 per million tokens" in planned
    assert "+ price *:gpt-4o: input 3.00, output 12.50 per million tokens" in planned
    assert ModelPrice.objects.count() == 0
    done, _ = apply(tmp_path, PRICES)
    assert planned.splitlines()[:-1] == done.splitlines()[:-1]
    assert prices() == [
        (None, "gpt-4o", Decimal("3"), Decimal("12.5")),
        ("openai", "gpt-4o", Decimal("2.5"), Decimal("10")),
    ]
    assert apply(tmp_path, PRICES)[0].strip() == "no changes"


def test_prices_are_updated_and_unlisted_prices_left_alone(tmp_path: Path) -> None:
    apply(tmp_path, PRICES)
    ModelPrice.objects.create(model="claude", input_per_million=1, output_per_million=2)
    changed = PRICES.replace('"2.50"', '"2.75"').replace("12.5", '"12.500000"')
    planned, _ = apply(tmp_path, changed, "--dry-run")
    assert planned.splitlines()[0] == "~ price openai:gpt-4o: input_per_million 2.50 → 2.75"
    assert len(planned.splitlines()) == 2  # 12.5 == "12.500000": not a change
    assert ModelPrice.objects.get(provider__name="openai").input_per_million == Decimal("2.5")
    apply(tmp_path, changed)
    assert ModelPrice.objects.get(provider__name="openai").input_per_million == Decimal("2.75")
    assert ModelPrice.objects.get(model="claude").output_per_million == Decimal(2)


def test_prices_round_trip_as_strings(tmp_path: Path) -> None:
    apply(tmp_path, PRICES)
    openai = Provider.objects.get(name="openai")
    ModelPrice.objects.create(
        provider=openai, model="o1-mini", input_per_million="0.075", output_per_million="0.000001"
    )
    exported, _ = gateway("export")
    assert yaml.safe_load(exported)["prices"] == [
        {"model": "gpt-4o", "input_per_million": "3.00", "output_per_million": "12.50"},
        {
            "provider": "openai",
            "model": "gpt-4o",
            "input_per_million": "2.50",
            "output_per_million": "10.00",
        },
        {
            "provider": "openai",
            "model": "o1-mini",
            "input_per_million": "0.075",
            "output_per_million": "0.000001",
        },
    ]
    assert apply(tmp_path, exported)[0].strip() == "no changes"
    assert gateway("export")[0] == exported


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("{provider: nope, model: m, input_per_million: 1, output_per_million: 1}",
         "prices[0].provider: unknown provider 'nope'"),
        ("{model: m, input_per_million: -1, output_per_million: 1}",
         "prices[0].input_per_million: must be a number >= 0"),
        ("{model: m, input_per_million: '0.0000001', output_per_million: 1}",
         "prices[0].input_per_million: at most 6 decimal places"),
        ("{model: m, input_per_million: lots, output_per_million: 1}",
         "prices[0].input_per_million: 'lots' is not a decimal number"),
        ("{model: m, input_per_million: true, output_per_million: 1}",
         "prices[0].input_per_million: must be a decimal number"),
        ("{model: m, input_per_million: 1000000, output_per_million: 1}",
         "prices[0].input_per_million: must be less than 1000000"),
        ("{model: m, input_per_million: 1}", "prices[0].output_per_million: required"),
        ("{model: m, input_per_million: 1, output_per_million: 1, currency: usd}",
         "prices[0].currency: unknown field"),
    ],
)  # fmt: skip
def test_invalid_prices(tmp_path: Path, price: str, message: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        apply(tmp_path, f"version: 1\nprices: [{price}]")
    assert message in str(excinfo.value)


def test_duplicate_prices_are_rejected(tmp_path: Path) -> None:
    text = PRICES + "  - {model: gpt-4o, input_per_million: 1, output_per_million: 1}\n"
    with pytest.raises(CommandError, match=r"prices\[2\]: duplicate price of 'gpt-4o' for any"):
        apply(tmp_path, text)


# -- credentials go through the audited services ----------------------------------------------
def test_credential_changes_are_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_SECRET_VALUE", "sk-azure-secret-value-0001")
    text = AZURE.replace(
        "        secret: env:AZURE_CLIENT_SECRET\n",
        "        secret: env:AZURE_SECRET_VALUE\n        store: encrypted\n",
    )
    apply(tmp_path, text)
    assert events("credential.created") == ["anthropic/primary", "azure/client-secret"]
    created = AuditEvent.objects.get(
        action="credential.created", target_label="azure/client-secret"
    )
    stored = Credential.objects.get(name="client-secret")
    assert created.details["fingerprint"] == stored.fingerprint and created.actor_label == "cli"
    assert "sk-azure" not in str(AuditEvent.objects.values_list("details", flat=True))

    monkeypatch.setenv("AZURE_SECRET_VALUE", "sk-azure-secret-value-0002")
    assert "~ credential azure/client-secret: secret changed" in apply(tmp_path, text)[0]
    assert events("credential.secret_replaced") == ["azure/client-secret"]
    stored.refresh_from_db()
    assert stored.reveal() == "sk-azure-secret-value-0002"

    without = text.replace("      - name: primary\n        secret: env:ANTHROPIC_API_KEY\n", "")
    assert "- credential anthropic/primary: retired" in apply(tmp_path, without)[0]
    assert events("credential.retired") == ["anthropic/primary"]
    assert "status retired → active" in apply(tmp_path, text)[0]
    assert events("credential.activated") == ["anthropic/primary"]
    assert Credential.objects.get(name="primary").status == CredentialStatus.ACTIVE


def test_dry_run_audits_nothing(tmp_path: Path) -> None:
    apply(tmp_path, AZURE, "--dry-run")
    assert AuditEvent.objects.count() == 0


def test_rotation_in_progress_is_respected(tmp_path: Path) -> None:
    apply(tmp_path, AZURE)
    anthropic = Provider.objects.get(name="anthropic")
    new = credential_create(
        provider=anthropic, name="rotated", env_var="ANTHROPIC_KEY_2", status="pending"
    )
    assert apply(tmp_path, AZURE)[0].strip() == "no changes"  # pending: not compared
    credential_activate(credential=new, grace=timedelta(hours=1))  # primary is now retiring
    exported, _ = gateway("export")
    names = [c["name"] for c in yaml.safe_load(exported)["providers"][0]["credentials"]]
    assert names == ["primary", "rotated"]  # retiring ones are exported
    assert apply(tmp_path, exported)[0].strip() == "no changes"
    assert Credential.objects.get(name="primary").status == CredentialStatus.RETIRING
    # The old file does not list the new credential: it is retired, primary stays retiring.
    assert "- credential anthropic/rotated: retired" in apply(tmp_path, AZURE)[0]
    assert Credential.objects.get(name="primary").status == CredentialStatus.RETIRING

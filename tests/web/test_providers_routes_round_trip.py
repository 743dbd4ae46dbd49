"""What the Providers and Routes pages save round-trips through config as code: export, then
apply to an emptied database, gives the same settings (and the same export); applied to the
database it came from, the file changes nothing."""

from __future__ import annotations

import pytest

from aigateway.config_as_code.applier import apply_config, plan
from aigateway.config_as_code.exporter import export_yaml
from aigateway.config_as_code.schema import parse_config
from aigateway.routing.models import Deployment, Route
from providers.models import Credential, ModelPrice, Provider
from tests.web.gateway_config_support import as_user, make_operator

SECRET = "sk-round-trip-stored-0001"


def _post(client, url: str, data: dict[str, object]) -> None:
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]


def _route(name: str, **fields: object) -> dict[str, object]:
    return {
        "name": name,
        "description": "Answers fast",
        "strategy": "weighted",
        "max_retries": "5",
        "backoff_base_seconds": "0.25",
        "backoff_cap_seconds": "8",
        "timeout_seconds": "90.5",
        "fallback_on_errors": "on",
        "fallback_on_content_filter": "on",
        "cache_mode": "always",
        "cache_scope": "org",
        "cache_ttl_seconds": "120",
        "semantic_cache": "on",
        "semantic_threshold": "0.93",
    } | fields


def _build_through_the_pages(client) -> None:
    _post(
        client,
        "/providers/",
        {
            "name": "vllm",
            "kind": "openai_compatible",
            "base_url": "https://vllm.internal.test/v1",
            "enabled": "on",
            "rotation_days": "30",
            "options": '{"region": "eu", "tier": 2}',
        },
    )
    _post(
        client,
        "/providers/",
        {
            "name": "azure",
            "kind": "azure_openai",
            "base_url": "https://eu.openai.azure.com",
            "rotation_days": "60",
            "options": '{"api_version": "2024-10-21", "auth": "api_key"}',
        },
    )
    vllm, azure = Provider.objects.get(name="vllm"), Provider.objects.get(name="azure")
    _post(client, f"/providers/{vllm.pk}/credentials/", {"name": "main", "env_var": "VLLM_KEY"})
    _post(client, f"/providers/{azure.pk}/credentials/", {"name": "eu", "env_var": "AZURE_KEY"})
    _post(
        client,
        f"/providers/{vllm.pk}/prices/",
        {"model": "llama-3-70b", "input_per_million": "0.59", "output_per_million": "0.79"},
    )
    _post(client, "/routes/", _route("smart"))
    _post(
        client,
        "/routes/",
        _route("plain", strategy="ordered", cache_mode="off", semantic_cache="", description=""),
    )
    smart, plain = Route.objects.get(name="smart"), Route.objects.get(name="plain")
    pinned = Credential.objects.get(name="main")
    for route, provider, model, extra in (
        (
            smart,
            vllm,
            "llama-3-70b",
            {"weight": "3", "credential": pinned.pk, "max_context_tokens": "8192"},
        ),
        (smart, azure, "gpt-4o-eu", {"weight": "1", "max_context_tokens": "128000"}),
        (smart, vllm, "llama-3-8b", {"weight": "0", "position": "0"}),
        (plain, azure, "gpt-4o-mini", {"weight": "1"}),
    ):
        data = {"provider": provider.pk, "upstream_model": model, "enabled": "on"} | extra
        _post(client, f"/routes/{route.pk}/deployments/", data)
    tiny = Deployment.objects.get(upstream_model="llama-3-8b")
    _post(
        client,
        f"/routes/deployments/{tiny.pk}/edit/",
        {"provider": vllm.pk, "upstream_model": "llama-3-8b", "weight": "0", "position": "2"},
    )


def _settings() -> dict[str, object]:
    """Everything the pages edit, by natural keys (no ids, no timestamps)."""
    providers = {
        p.name: (
            p.kind,
            p.base_url,
            p.enabled,
            p.options,
            p.rotation_days,
            sorted((c.name, c.env_var, c.status) for c in p.credentials.all()),
        )
        for p in Provider.objects.all()
    }
    skip = {"id", "created_at"}
    routes = {
        r.name: (
            {f.name: getattr(r, f.name) for f in Route._meta.concrete_fields if f.name not in skip},
            [
                (
                    d.priority,
                    d.provider.name,
                    d.upstream_model,
                    d.credential.name if d.credential else "",
                    d.weight,
                    d.enabled,
                    d.max_context_tokens,
                )
                for d in r.deployments.order_by("priority")
            ],
        )
        for r in Route.objects.all()
    }
    prices = sorted(
        (p.provider.name if p.provider else "", p.model, p.input_per_million, p.output_per_million)
        for p in ModelPrice.objects.all()
    )
    return {"providers": providers, "routes": routes, "prices": prices}


def test_what_the_pages_save_exports_and_applies_back_to_the_same_settings(
    client, cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_KEY", "sk-vllm-from-env-0001")
    monkeypatch.setenv("AZURE_KEY", "sk-azure-from-env-0002")
    as_user(client, make_operator())
    _build_through_the_pages(client)
    saved = _settings()
    assert saved["routes"]["smart"][1] == [
        (0, "vllm", "llama-3-70b", "main", 3, True, 8192),
        (1, "azure", "gpt-4o-eu", "", 1, True, 128000),
        (2, "vllm", "llama-3-8b", "", 0, False, None),
    ]
    text = export_yaml()
    assert plan(parse_config(text)) == []  # the file describes exactly what is saved

    Route.objects.all().delete()  # deployments go with their routes
    ModelPrice.objects.all().delete()
    Provider.objects.all().delete()  # credentials go with their providers
    apply_config(parse_config(text))

    assert _settings() == saved
    assert export_yaml() == text


def test_a_stored_secret_exports_as_stored_and_the_file_changes_nothing(client, cast) -> None:
    as_user(client, make_operator())
    _post(
        client,
        "/providers/",
        {"name": "openai", "kind": "openai", "rotation_days": "90", "enabled": "on"},
    )
    provider = Provider.objects.get()
    _post(client, f"/providers/{provider.pk}/credentials/", {"name": "main", "secret": SECRET})
    text = export_yaml()
    assert "secret: stored" in text and SECRET not in text
    assert plan(parse_config(text)) == []

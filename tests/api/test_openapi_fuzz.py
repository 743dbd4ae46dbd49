"""schemathesis against the served OpenAPI document: every operation of /api/schema, on the
real ASGI app over HTTP, authenticated (a team key for /v1, a gateway operator's admin token
for /api), with valid and invalid inputs. No answer may be a 5xx, and every answer must match
the document (status documented, body of the documented shape).

Deterministic (derandomized) and bounded: a few examples per operation and mode.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from auth.admin_tokens import admin_token_create
from tests.factories import make_key, make_provider, make_route

EXAMPLES = 4
# Inference operations whose answers are exactly described (not byte streams).
NOT_EXACT = {("GET", "/v1/files/{file_id}/content")}


@pytest.fixture
def world(live_gateway: Any, cast: Any, redis_url: str) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from aigateway.quotas.services import limit_set

    operator = get_user_model().objects.create_superuser("op", "op@example.test", "pw-op-secret")
    route = make_route("demo", (make_provider(), "demo"))
    team_key = make_key(cast.team, route, name="fuzz")
    decoy_key = make_key(cast.team, route, name="decoy")
    token = admin_token_create(user=operator, name="fuzz", lifetime_days=1)
    decoy_token = admin_token_create(user=operator, name="decoy", lifetime_days=1)
    limit = limit_set(actor=None, scope="team", scope_id=cast.team.pk, kind="rpm", value=1000)
    return {
        "base": live_gateway.base_url,
        "v1": {"Authorization": f"Bearer {team_key.raw_key}"},
        "api": {"Authorization": f"Bearer {token.raw_token}"},
        "ids": {
            "team_id": cast.team.pk,
            "user_id": cast.carol.pk,
            "key_id": decoy_key.api_key.pk,
            "limit_id": limit.pk,
            "route_id": route.pk,
            "deployment_id": route.deployments.get().pk,
            "token_id": decoy_token.token.pk,
            "model": "demo",
        },
    }


def _order(operation: Any) -> tuple[int, int, str]:
    """Inference first (a management DELETE may remove the team its key belongs to), and
    deletions last."""
    return (
        0 if operation.path.startswith("/v1/") else 1,
        1 if operation.method.upper() == "DELETE" else 0,
        operation.label,
    )


def _run(
    operation: Any,
    mode: GenerationMode,
    world: dict[str, Any],
    fixed: dict[str, Any],
    failures: list[str],
) -> int:
    headers = world["v1"] if operation.path.startswith("/v1/") else world["api"]
    exact = (operation.method.upper(), operation.path) not in NOT_EXACT
    checks = [st_checks.not_a_server_error, st_checks.status_code_conformance]
    if exact:
        checks += [st_checks.response_schema_conformance, st_checks.content_type_conformance]
    calls = 0

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
    def check(case: Any) -> None:
        nonlocal calls
        if mode is GenerationMode.POSITIVE and isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = "demo"  # reach the pipeline, not only the route lookup
        response = case.call(base_url=world["base"], headers=headers, timeout=20)
        calls += 1
        case.validate_response(response, checks=checks, headers=headers)

    try:
        check()
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
        failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
    return calls


@pytest.mark.slow
def test_no_operation_answers_5xx_or_off_schema(world: dict[str, Any]) -> None:
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(world["base"] + "/api/schema")
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=_order)
    assert len(operations) >= 40
    failures: list[str] = []
    calls = 0
    for operation in operations:
        params = {p.name for p in operation.path_parameters}
        fixed = {name: world["ids"][name] for name in params if name in world["ids"]}
        calls += _run(operation, GenerationMode.POSITIVE, world, fixed, failures)
        calls += _run(operation, GenerationMode.NEGATIVE, world, {}, failures)
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} failing operations:\n\n" + "\n\n".join(failures)
    assert calls >= len(operations) * 4, calls
    assert elapsed < 90, f"the fuzzing took {elapsed:.0f}s"

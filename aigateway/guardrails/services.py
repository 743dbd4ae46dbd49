"""Changes to guardrail policies: validated, permission-checked and audited.

Whoever calls (the dashboard, ``manage.py gateway apply``), a change goes through
``policy_set`` or ``policy_delete``: the values are checked with the same rules as the config
file (aigateway/guardrails/rules.py), the actor's rights with aigateway/guardrails/
permissions.py (an ``actor`` of None is the command line: trusted, audited as ``cli``), and
the change is recorded with the policy before and after (``guardrail_policy.created``,
``.updated``, ``.deleted``). A change that changes nothing is not recorded. Saving bumps the
config version, so every process applies the new policy within about a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from aigateway.audit.changes import audit_change, model_snapshot
from aigateway.guardrails.models import GuardrailPolicy, Scope
from aigateway.guardrails.permissions import policy_require_manage
from aigateway.guardrails.rules import RuleError, limit_parse, params_parse, rules_parse
from aigateway.routing.models import Route
from auth.models import Organisation, Team

LIMIT_FIELDS = ("max_prompt_tokens", "max_messages", "max_output_tokens")


@dataclass(frozen=True)
class PolicyValues:
    """What a policy says (everything but its target)."""

    enabled: bool = True
    reversible: bool = False
    max_prompt_tokens: int | None = None
    max_messages: int | None = None
    max_output_tokens: int | None = None
    allowed_params: list[str] | None = None  # None: any parameter
    rules: list[dict[str, Any]] = field(default_factory=list)


def policy_validate(values: PolicyValues) -> tuple[PolicyValues, dict[str, str]]:
    """The values normalized (rules in their stored form), and field → what is wrong."""
    errors: dict[str, str] = {}
    limits: dict[str, int | None] = {}
    for name in LIMIT_FIELDS:
        try:
            limits[name] = limit_parse(getattr(values, name), name)
        except RuleError as exc:
            errors[name] = str(exc).split(": ", 1)[1].capitalize() + "."
    try:
        params = params_parse(values.allowed_params)
    except RuleError as exc:
        errors["allowed_params"] = str(exc) + "."
        params = None
    try:
        rules = [rule.as_dict() for rule in rules_parse(values.rules)]
    except RuleError as exc:
        errors["rules"] = str(exc) + "."
        rules = []
    normalized = PolicyValues(
        enabled=bool(values.enabled),
        reversible=bool(values.reversible),
        allowed_params=list(params) if params is not None else None,
        rules=rules,
        **limits,  # type: ignore[arg-type]
    )
    return normalized, errors


def _target_checks(
    scope: str, organisation: Organisation, team: Team | None, route: Route | None
) -> None:
    if scope not in Scope.values:
        raise ValidationError({"scope": "Choose what the policy applies to."})
    if scope == Scope.TEAM and (team is None or team.organisation_id != organisation.pk):
        raise ValidationError({"scope": "A team policy needs a team of the organisation."})
    if scope == Scope.ROUTE and route is None:
        raise ValidationError({"scope": "A route policy needs a route."})


def _existing(
    scope: str, organisation: Organisation, team: Team | None, route: Route | None
) -> GuardrailPolicy | None:
    rows = GuardrailPolicy.objects.select_for_update().filter(scope=scope)
    if scope == Scope.TEAM:
        return rows.filter(team=team).first()
    if scope == Scope.ROUTE:
        return rows.filter(organisation=organisation, route=route).first()
    return rows.filter(organisation=organisation).first()


@transaction.atomic
def policy_set(
    *,
    actor: AbstractBaseUser | None,
    scope: str,
    organisation: Organisation,
    team: Team | None = None,
    route: Route | None = None,
    values: PolicyValues,
) -> GuardrailPolicy:
    """Create the policy of this target or change it (one per target). Raises
    ValidationError (field → sentence) or PermissionDenied. Audited; a no-op is not."""
    _target_checks(scope, organisation, team, route)
    if actor is not None:
        policy_require_manage(
            actor,
            scope=scope,
            organisation_id=organisation.pk,
            team_id=team.pk if team is not None else None,
        )
    normalized, errors = policy_validate(values)
    if errors:
        raise ValidationError(errors)
    current = _existing(scope, organisation, team, route)
    before = model_snapshot(current, exclude=("updated_at",)) if current is not None else None
    row = current or GuardrailPolicy(
        scope=scope,
        organisation=organisation,
        team=team if scope == Scope.TEAM else None,
        route=route if scope == Scope.ROUTE else None,
    )
    for name in ("enabled", "reversible", "allowed_params", "rules", *LIMIT_FIELDS):
        setattr(row, name, getattr(normalized, name))
    if before is not None and before == model_snapshot(row, exclude=("updated_at",)):
        return row
    row.save()
    audit_change(
        actor=actor,
        action="guardrail_policy.created" if current is None else "guardrail_policy.updated",
        target=row,
        before=before,
        after=model_snapshot(row, exclude=("updated_at",)),
        target_label=row.target_label,
    )
    return row


@transaction.atomic
def policy_delete(*, actor: AbstractBaseUser | None, policy: GuardrailPolicy) -> None:
    """Delete a policy (its calls are held to the remaining ones). Audited."""
    if actor is not None:
        policy_require_manage(
            actor,
            scope=policy.scope,
            organisation_id=policy.organisation_id,
            team_id=policy.team_id,
        )
    before, pk, label = (
        model_snapshot(policy, exclude=("updated_at",)),
        policy.pk,
        policy.target_label,
    )
    policy.delete()
    policy.pk = pk  # the audit entry names what was deleted
    audit_change(
        actor=actor,
        action="guardrail_policy.deleted",
        target=policy,
        before=before,
        after=None,
        target_label=label,
    )

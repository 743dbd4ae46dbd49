"""Guardrail policies in the file: the top-level ``guardrails:`` list (parse, plan, export).

    guardrails:
      - scope: org                  # org | team | route
        target: acme                # org: ORG · team: ORG/TEAM · route: ORG/ROUTE
        enabled: true
        reversible: false
        limits: {max_prompt_tokens: 8000, max_messages: 50, max_output_tokens: 2000}
        allowed_params: [temperature, top_p, stop]   # omitted: any parameter
        rules:
          - {detect: secrets, action: block}
          - {detect: pii, action: redact, direction: both}
          - {detect: injection, action: flag}
          - {detect: custom.codename, pattern: "Project (Falcon|Eagle)", action: block}

A policy is identified by its scope and target; a listed policy is brought to exactly the
declared state (omitted limits are cleared, omitted ``allowed_params`` allows any, omitted
``rules`` is none); policies the file does not list are left alone. A route policy belongs to
an organisation (routes serve every organisation), so its target is ORG/ROUTE, split at the
first ``/`` (route names may contain one). Changes go through
aigateway.guardrails.services.policy_set: validated and audited like a dashboard change.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

from aigateway.config_as_code.planning import Planner
from aigateway.config_as_code.reader import Fields
from aigateway.config_as_code.specs import ConfigError, GuardrailSpec
from aigateway.guardrails.models import GuardrailPolicy, Scope
from aigateway.guardrails.rules import RuleError, limit_parse, params_parse, rules_parse
from aigateway.guardrails.services import PolicyValues, policy_set
from aigateway.routing.models import Route
from auth.models import Organisation, Team

FIELDS = ("scope", "target", "enabled", "reversible", "limits", "allowed_params", "rules")
LIMIT_FIELDS = ("max_prompt_tokens", "max_messages", "max_output_tokens")
_SLUG = "[-a-zA-Z0-9_]+"
TARGETS = {
    Scope.ORGANISATION: (re.compile(rf"^{_SLUG}$"), "an organisation slug", "acme"),
    Scope.TEAM: (re.compile(rf"^{_SLUG}/{_SLUG}$"), "ORG/TEAM", "acme/research"),
    Scope.ROUTE: (re.compile(rf"^{_SLUG}/.+$"), "ORG/ROUTE", "acme/gpt-4o"),
}
SCOPE_ORDER = [Scope.ORGANISATION, Scope.TEAM, Scope.ROUTE]


# -- parsing ----------------------------------------------------------------------------------
def parse_guardrail(m: Fields) -> GuardrailSpec:
    scope = m.text("scope", choices=list(Scope.values))
    pattern, shape, example = TARGETS[Scope(scope)]
    target = m.text("target", max_len=500)
    if not pattern.match(target):
        raise m.fail("target", f"'{target}' is not {shape} (e.g. {example})")
    limits = m.block("limits", LIMIT_FIELDS)
    try:
        bounds = {
            name: limit_parse(limits.data.get(name), limits.at(name)) for name in LIMIT_FIELDS
        }
        params = params_parse(m.data.get("allowed_params"), m.at("allowed_params"))
        rules = rules_parse(m.data.get("rules"), m.at("rules"))
    except RuleError as exc:
        raise ConfigError(str(exc)) from None
    return GuardrailSpec(
        m.path,
        scope,
        target,
        m.flag("enabled", True),
        m.flag("reversible", False),
        bounds["max_prompt_tokens"],
        bounds["max_messages"],
        bounds["max_output_tokens"],
        params,
        tuple(rule.as_dict() for rule in rules),
    )


def check_unique(specs: tuple[GuardrailSpec, ...]) -> None:
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.label in seen:
            raise ConfigError(
                f"{spec.path}: duplicate guardrail policy for {spec.scope} "
                f"'{spec.target}' (declared at {seen[spec.label]} already)"
            )
        seen[spec.label] = spec.path


# -- planning ---------------------------------------------------------------------------------
def _declared_org(p: Planner, slug: str) -> bool:
    return any(o.slug == slug for o in p.config.organisations)


def _resolve(p: Planner, spec: GuardrailSpec) -> tuple[GuardrailPolicy | None, Any]:
    """The current policy (None: none yet) and a function giving the target when it runs."""
    path = f"{spec.path}.target"
    org_slug, _, rest = spec.target.partition("/")
    org = Organisation.objects.filter(slug=org_slug).first()
    if org is None and not _declared_org(p, org_slug):
        raise ConfigError(f"{path}: unknown organisation '{org_slug}'")
    current = GuardrailPolicy.objects.filter(scope=spec.scope)
    if spec.scope == Scope.TEAM:
        team = Team.objects.filter(organisation__slug=org_slug, slug=rest).first()
        declared = any(
            o.slug == org_slug and any(t.slug == rest for t in o.teams)
            for o in p.config.organisations
        )
        if team is None and not declared:
            raise ConfigError(f"{path}: unknown team '{spec.target}'")
        found = current.filter(team=team).first() if team is not None else None

        def team_target() -> tuple[Organisation, Team | None, Route | None]:
            t = Team.objects.select_related("organisation").get(
                organisation__slug=org_slug, slug=rest
            )
            return t.organisation, t, None

        return found, team_target
    if spec.scope == Scope.ROUTE:
        route = Route.objects.filter(name=rest).first()
        if route is None and rest not in p.routes:
            raise ConfigError(f"{path}: unknown route '{rest}'")
        found = None
        if org is not None and route is not None:
            found = current.filter(organisation=org, route=route).first()
        return found, lambda: (
            Organisation.objects.get(slug=org_slug),
            None,
            Route.objects.get(name=rest),
        )
    found = current.filter(organisation=org).first() if org is not None else None
    return found, lambda: (Organisation.objects.get(slug=org_slug), None, None)


def _wanted(spec: GuardrailSpec) -> dict[str, Any]:
    return {
        "enabled": spec.enabled,
        "reversible": spec.reversible,
        "max_prompt_tokens": spec.max_prompt_tokens,
        "max_messages": spec.max_messages,
        "max_output_tokens": spec.max_output_tokens,
        "allowed_params": list(spec.allowed_params) if spec.allowed_params is not None else None,
        "rules": [dict(r) for r in spec.rules],
    }


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _rule_text(rule: dict[str, Any]) -> str:
    return f"{rule['detect']} {rule['action']} ({rule['direction']})"


def rules_diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """``rules +custom.codename block (both)``, ``rules ~pii redact (both) → block (both)``,
    ``rules -secrets``; by ``detect`` (each appears once per policy)."""
    before = {r["detect"]: r for r in old}
    after = {r["detect"]: r for r in new}
    notes = [f"rules -{d}" for d in before if d not in after]
    for detect, rule in after.items():
        if detect not in before:
            notes.append(f"rules +{_rule_text(rule)}")
        elif before[detect] != rule:
            was = before[detect]
            change = (
                f"{was['action']} ({was['direction']}) → {rule['action']} ({rule['direction']})"
            )
            if {k: v for k, v in was.items() if k not in ("action", "direction")} != {
                k: v for k, v in rule.items() if k not in ("action", "direction")
            }:
                change += ", definition changed"
            notes.append(f"rules ~{detect} {change}")
    return notes


def plan_guardrail(p: Planner, spec: GuardrailSpec) -> None:
    current, target = _resolve(p, spec)
    wanted = _wanted(spec)

    def run() -> None:
        organisation, team, route = target()
        try:
            policy_set(
                actor=None,
                scope=spec.scope,
                organisation=organisation,
                team=team,
                route=route,
                values=PolicyValues(**wanted),
            )
        except ValidationError as exc:
            raise ConfigError(f"{spec.path}: {' '.join(exc.messages)}") from None

    if current is None:
        notes = [f"{len(spec.rules)} rules"]
        notes += [f"{k} {v}" for k, v in wanted.items() if k.startswith("max_") and v is not None]
        notes += [] if spec.enabled else ["disabled"]
        notes += ["reversible"] if spec.reversible else []
        p.add("create", "guardrail policy", spec.label, ", ".join(notes), run)
        return
    diff = []
    for name, value in wanted.items():
        old = getattr(current, name)
        if name == "rules":
            diff += rules_diff(old or [], value)
        elif old != value:
            diff.append(f"{name} {_shown(old)} → {_shown(value)}")
    if diff:
        p.add("update", "guardrail policy", spec.label, "; ".join(diff), run)


# -- export -----------------------------------------------------------------------------------
def _target(policy: GuardrailPolicy) -> str:
    if policy.scope == Scope.TEAM and policy.team is not None:
        return f"{policy.organisation.slug}/{policy.team.slug}"
    if policy.scope == Scope.ROUTE and policy.route is not None:
        return f"{policy.organisation.slug}/{policy.route.name}"
    return policy.organisation.slug


def export_guardrails() -> list[dict[str, Any]]:
    """Every policy, in a stable order; limits and allowed_params only when set."""
    items = []
    for policy in GuardrailPolicy.objects.select_related("organisation", "team", "route"):
        item: dict[str, Any] = {
            "scope": policy.scope,
            "target": _target(policy),
            "enabled": policy.enabled,
            "reversible": policy.reversible,
        }
        limits = {n: getattr(policy, n) for n in LIMIT_FIELDS if getattr(policy, n) is not None}
        if limits:
            item["limits"] = limits
        if policy.allowed_params is not None:
            item["allowed_params"] = list(policy.allowed_params)
        item["rules"] = [dict(rule) for rule in policy.rules]
        items.append(item)
    items.sort(key=lambda i: (SCOPE_ORDER.index(i["scope"]), i["target"]))
    return items

"""The policy a call is held to: its organisation's, its team's and its route's, merged and
compiled once, then served from memory.

Merging (docs/guardrails.md, "Policies"): every rule of every applicable policy counts. When
several rules cover the same detector in the same direction, the strictest action wins
(block > redact > flag), so a team or route policy can tighten its organisation's policy but
never loosen it. Limits take the lowest value declared; allowed parameters must be allowed by
every policy that lists them; redaction is reversible if any of the policies enables it (it
only ever shows the requester the values they sent themselves). Disabled policies do not
count.

Caching: all enabled policies are loaded in ONE query into a ``PolicySet`` kept in the
in-process config cache (aigateway/core/config_cache.py), so it is dropped within a second
of any change in any process (policy writes bump the config version). Custom patterns are
compiled when the set is loaded, never per request; the merged policy of each
(organisation, team, route) is computed on first use and kept in the set. No database query
per request in the steady state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aigateway.core.config_cache import config_cache
from aigateway.guardrails import detectors
from aigateway.guardrails.rules import (
    RuleError,
    RuleSpec,
    detector_names,
    is_injection,
    params_parse,
    rule_parse,
)

if TYPE_CHECKING:  # models need the app registry; the pipeline imports this module
    from aigateway.guardrails.models import GuardrailPolicy

logger = logging.getLogger(__name__)
ORIGINS = {"org": "organisation policy", "team": "team policy", "route": "route policy"}
STRICTNESS = {"flag": 0, "redact": 1, "block": 2}
MAX_MERGED = 10_000  # merged policies kept per set (organisation, team, route)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the policy does with one detector's findings in one direction."""

    action: str  # block | redact | flag
    origin: str  # "organisation policy", "team policy", "route policy"


@dataclass(frozen=True, slots=True)
class Bound:
    value: int
    origin: str


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    """One enabled policy row, parsed, its custom detectors compiled."""

    origin: str
    rules: tuple[RuleSpec, ...]
    custom: Mapping[str, detectors.Detector]
    max_prompt_tokens: int | None = None
    max_messages: int | None = None
    max_output_tokens: int | None = None
    allowed_params: frozenset[str] | None = None
    reversible: bool = False


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """The merged policy of one (organisation, team, route)."""

    # Input detectors for what users supply (user and tool messages): injection included.
    user_detectors: tuple[detectors.Detector, ...] = ()
    # Input detectors for the rest of the conversation (system, developer, assistant).
    context_detectors: tuple[detectors.Detector, ...] = ()
    output_detectors: tuple[detectors.Detector, ...] = ()
    input_actions: Mapping[str, Verdict] = field(default_factory=dict)
    output_actions: Mapping[str, Verdict] = field(default_factory=dict)
    max_prompt_tokens: Bound | None = None
    max_messages: Bound | None = None
    max_output_tokens: Bound | None = None
    allowed_params: tuple[tuple[frozenset[str], str], ...] = ()  # (names, origin) per policy
    reversible: bool = False


def _compile_custom(rule: RuleSpec) -> detectors.Detector:
    if rule.pattern:
        return detectors.regex_detector(rule.detect, rule.pattern, ignore_case=rule.ignore_case)
    return detectors.wordlist_detector(rule.detect, list(rule.words), ignore_case=rule.ignore_case)


def stored_policy(
    *,
    scope: str,
    rules: Any,
    max_prompt_tokens: int | None = None,
    max_messages: int | None = None,
    max_output_tokens: int | None = None,
    allowed_params: Any = None,
    reversible: bool = False,
    label: str = "",
) -> StoredPolicy:
    """Parse and compile one policy. A stored rule that no longer parses (a detector renamed
    by an upgrade) is skipped and logged: the rest of the policy still applies, and calls are
    not refused for the gateway's own inconsistency."""
    parsed: list[RuleSpec] = []
    custom: dict[str, detectors.Detector] = {}
    for index, raw in enumerate(rules or []):
        try:
            rule = rule_parse(raw, f"rules[{index}]")
            if rule.custom:
                custom[rule.detect] = _compile_custom(rule)
        except (RuleError, ValueError) as exc:
            logger.error("guardrail policy %s: rule skipped: %s", label, exc)
            continue
        parsed.append(rule)
    try:
        params = params_parse(allowed_params)
    except RuleError as exc:
        logger.error("guardrail policy %s: allowed_params ignored: %s", label, exc)
        params = None
    return StoredPolicy(
        origin=ORIGINS.get(scope, "policy"),
        rules=tuple(parsed),
        custom=custom,
        max_prompt_tokens=max_prompt_tokens,
        max_messages=max_messages,
        max_output_tokens=max_output_tokens,
        allowed_params=frozenset(params) if params is not None else None,
        reversible=reversible,
    )


def _stricter(current: Verdict | None, new: Verdict) -> Verdict:
    if current is None or STRICTNESS[new.action] > STRICTNESS[current.action]:
        return new
    return current


def _lowest(current: Bound | None, value: int | None, origin: str) -> Bound | None:
    if value is None or (current is not None and current.value <= value):
        return current
    return Bound(value, origin)


def merge(policies: list[StoredPolicy]) -> CompiledPolicy | None:
    """The merged policy (widest first: organisation, team, route); None if it does nothing."""
    inputs: dict[str, Verdict] = {}
    outputs: dict[str, Verdict] = {}
    found: dict[str, detectors.Detector] = {}
    injection: set[str] = set()
    bounds: dict[str, Bound | None] = {"prompt": None, "messages": None, "output": None}
    params: list[tuple[frozenset[str], str]] = []
    reversible = False
    for policy in policies:
        for rule in policy.rules:
            if rule.custom:
                names: tuple[str, ...] = (rule.detect,)
                found[rule.detect] = policy.custom[rule.detect]
            else:
                names = detector_names(rule.detect)
                found.update((n, detectors.BUILTIN_DETECTORS[n]) for n in names)
                if is_injection(rule.detect):
                    injection.update(names)
            verdict = Verdict(rule.action, policy.origin)
            for name in names:
                if rule.direction in ("input", "both"):
                    inputs[name] = _stricter(inputs.get(name), verdict)
                if rule.direction in ("output", "both"):
                    outputs[name] = _stricter(outputs.get(name), verdict)
        bounds["prompt"] = _lowest(bounds["prompt"], policy.max_prompt_tokens, policy.origin)
        bounds["messages"] = _lowest(bounds["messages"], policy.max_messages, policy.origin)
        bounds["output"] = _lowest(bounds["output"], policy.max_output_tokens, policy.origin)
        if policy.allowed_params is not None:
            params.append((policy.allowed_params, policy.origin))
        reversible = reversible or policy.reversible
    compiled = CompiledPolicy(
        user_detectors=tuple(found[n] for n in inputs),
        context_detectors=tuple(found[n] for n in inputs if n not in injection),
        output_detectors=tuple(found[n] for n in outputs),
        input_actions=inputs,
        output_actions=outputs,
        max_prompt_tokens=bounds["prompt"],
        max_messages=bounds["messages"],
        max_output_tokens=bounds["output"],
        allowed_params=tuple(params),
        reversible=reversible,
    )
    return None if compiled == CompiledPolicy() else compiled


class PolicySet:
    """Every enabled policy, by target; merged policies memoized per call scope."""

    def __init__(
        self,
        orgs: dict[int, StoredPolicy],
        teams: dict[int, StoredPolicy],
        routes: dict[tuple[int, str], StoredPolicy],
    ) -> None:
        self.orgs, self.teams, self.routes = orgs, teams, routes
        self.empty = not (orgs or teams or routes)
        self._merged: dict[tuple[int, int, str], CompiledPolicy | None] = {}

    def resolve(self, organisation_id: int, team_id: int, route: str) -> CompiledPolicy | None:
        if self.empty:
            return None
        key = (organisation_id, team_id, route)
        try:
            return self._merged[key]
        except KeyError:
            pass
        parts = [
            p
            for p in (
                self.orgs.get(organisation_id),
                self.teams.get(team_id),
                self.routes.get((organisation_id, route)),
            )
            if p is not None
        ]
        compiled = merge(parts) if parts else None
        if len(self._merged) >= MAX_MERGED:  # bound memory against many (team, route) pairs
            self._merged.clear()
        self._merged[key] = compiled
        return compiled


def policy_stored(row: GuardrailPolicy) -> StoredPolicy:
    """One policy row, compiled (the dashboard's "try it" previews a single policy)."""
    return stored_policy(
        scope=row.scope,
        rules=row.rules,
        max_prompt_tokens=row.max_prompt_tokens,
        max_messages=row.max_messages,
        max_output_tokens=row.max_output_tokens,
        allowed_params=row.allowed_params,
        reversible=row.reversible,
        label=f"#{row.pk}",
    )


def _load_policies() -> PolicySet:
    from aigateway.guardrails.models import GuardrailPolicy, Scope

    orgs: dict[int, StoredPolicy] = {}
    teams: dict[int, StoredPolicy] = {}
    routes: dict[tuple[int, str], StoredPolicy] = {}
    rows = GuardrailPolicy.objects.filter(enabled=True).select_related("route")
    for row in rows:
        stored = policy_stored(row)
        if row.scope == Scope.ORGANISATION:
            orgs[row.organisation_id] = stored
        elif row.scope == Scope.TEAM and row.team_id is not None:
            teams[row.team_id] = stored
        elif row.scope == Scope.ROUTE and row.route is not None:
            routes[(row.organisation_id, row.route.name)] = stored
    return PolicySet(orgs, teams, routes)


CACHE_KEY = ("guardrails",)


async def policy_for_call(organisation_id: int, team_id: int, route: str) -> CompiledPolicy | None:
    """The merged policy of a call (None: no guardrail applies). From memory once loaded."""
    policies: PolicySet = await config_cache.get_or_load(CACHE_KEY, _load_policies)
    return policies.resolve(organisation_id, team_id, route)


def policy_for_call_sync(organisation_id: int, team_id: int, route: str) -> CompiledPolicy | None:
    """The same, read from the database now (dashboard previews, tests)."""
    return _load_policies().resolve(organisation_id, team_id, route)

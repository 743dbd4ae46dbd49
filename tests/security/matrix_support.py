"""The world of the permission and tenancy matrix (tests/security/test_permission_matrix.py):
two organisations with two teams each, a user per role, and objects of every kind in every
team, plus who may do what (from issues #8 and #13), how a response is classified and a
fingerprint of everything stored (so a refused request provably changed nothing).

Organisation A is acme (teams quokka = A1, wombat = A2), organisation B is globex (teams
narwhal = B1, okapi = B2). Every object of a team carries the team's slug, so the slug is a
marker: it must never appear in a response to a role that may not see that team.

Roles under test: root (Django superuser, the gateway operator), alice (platform admin of A),
dave (auditor of A), bob (team admin of A1), carol (member of A1), frank (platform admin of
B) and anonymous. gina (A2), eve (B1) and hank (B2) are members who own data; ivan has no
role (someone to add to a team).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from asgiref.sync import async_to_sync
from django.apps import apps
from django.contrib.auth import get_user_model
from django.utils import timezone

from aigateway.audit.services import audit_record
from aigateway.batches.models import Batch, BatchFile
from aigateway.caching import store
from aigateway.caching.selectors import team_prefix
from aigateway.guardrails.models import GuardrailPolicy
from aigateway.guardrails.services import PolicyValues, policy_set
from aigateway.playground.models import PlaygroundRun
from aigateway.quotas.models import Limit, QuotaAlert
from aigateway.routing.models import Deployment, Route
from aigateway.usage.models import UsageRecord
from auth.admin_tokens import admin_token_create
from auth.models import (
    AdminToken,
    ApiKey,
    Organisation,
    OrgMembership,
    OrgRole,
    Team,
    TeamMembership,
    TeamRole,
)
from auth.services import api_key_create
from auth.sso.models import IdentityProvider, MappingRule
from auth.sso.services import idp_create, mapping_rule_create
from providers.models import Credential, ModelPrice, Provider, ProviderKind
from providers.services import credential_create
from tests.factories import make_provider
from tests.sso_unit.saml_support import keypair

ROLES = ("root", "alice", "dave", "bob", "carol", "frank", "anonymous")
TEAMS = {"A1": ("A", "quokka"), "A2": ("A", "wombat"), "B1": ("B", "narwhal"), "B2": ("B", "okapi")}
ORGS = {"A": ("acme", "Acme"), "B": ("globex", "Globex")}
MEMBER_OF = {"A1": "carol", "A2": "gina", "B1": "eve", "B2": "hank"}  # a member who owns data
UPSTREAM_SECRET = "sk-matrix-upstream-0123456789"


# -- who may do what (issue #8: platform admin everything of their organisation, team admin
#    only their team, auditor reads only, member their own usage) ------------------------------
WIDE = {"alice": {"A"}, "dave": {"A"}, "frank": {"B"}}  # platform admins and auditors
ADMIN = {"alice": {"A"}, "frank": {"B"}}  # platform admins
TEAM_ROLES = {"bob": {"A1": TeamRole.TEAM_ADMIN}, "carol": {"A1": TeamRole.MEMBER}}


def org_of(slot: str) -> str:
    return slot[0]


def sees_team(role: str, slot: str) -> bool:
    """Reads the team, its members, keys, limits, cache, usage (members: their own)."""
    return role == "root" or org_of(slot) in WIDE.get(role, ()) or slot in TEAM_ROLES.get(role, {})


def admins_org(role: str, org: str) -> bool:
    return role == "root" or org in ADMIN.get(role, ())


def reads_org(role: str, org: str) -> bool:
    return role == "root" or org in WIDE.get(role, ())


def has_role_in_org(role: str, org: str) -> bool:
    return reads_org(role, org) or any(org_of(t) == org for t in TEAM_ROLES.get(role, {}))


def changes_team(role: str, slot: str) -> bool:
    """Renames, re-routes, deletes the team, sets its limits, purges its cache."""
    return admins_org(role, org_of(slot))


def team_admin(role: str, slot: str) -> bool:
    return TEAM_ROLES.get(role, {}).get(slot) == TeamRole.TEAM_ADMIN


def manages_people(role: str, slot: str) -> bool:
    """Adds and removes members, issues and revokes keys, sets key limits, edits the team's
    guardrail policy."""
    return changes_team(role, slot) or team_admin(role, slot)


def reads_gateway(role: str) -> bool:
    """Providers, routes, breakers: platform admins and auditors read, nobody else."""
    return role == "root" or bool(WIDE.get(role))


def visible_slots(role: str) -> set[str]:
    return {slot for slot in TEAMS if sees_team(role, slot)}


def forbidden_markers(role: str) -> set[str]:
    """Text that must never reach ``role``: other teams' slugs, other organisations' slugs,
    and other users' playground prompts (a run is its author's alone)."""
    if role == "anonymous":
        return set()
    hidden = {TEAMS[slot][1] for slot in TEAMS if not sees_team(role, slot)}
    hidden |= {ORGS[o][0] for o in ORGS if not has_role_in_org(role, o) and role != "root"}
    hidden |= {f"{user}-private-prompt" for user in MEMBER_OF.values() if user != role}
    return hidden


# -- outcomes ------------------------------------------------------------------------------
class Outcome(Enum):
    OK = "allowed"
    LOGIN = "redirect to login"
    ADMIN_LOGIN = "redirect to the admin login"
    UNAUTH = "401"
    FORBIDDEN = "403"
    NOT_FOUND = "404"
    REFUSED = "400 (the form offers no such choice)"
    ERROR = "5xx"
    OTHER = "other"


def classify(response: Any) -> Outcome:
    status = response.status_code
    if status in (301, 302, 303):
        location = response.get("Location", "")
        if location.startswith("/login/"):
            return Outcome.LOGIN
        if location.startswith("/admin/login/"):
            return Outcome.ADMIN_LOGIN
        return Outcome.OK
    return {
        401: Outcome.UNAUTH,
        403: Outcome.FORBIDDEN,
        404: Outcome.NOT_FOUND,
        400: Outcome.REFUSED,
    }.get(status) or (
        Outcome.OK if 200 <= status < 300 else Outcome.ERROR if status >= 500 else Outcome.OTHER
    )


def body_text(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")  # type: ignore[attr-defined]
    return response.content.decode(errors="replace")


# -- the world -----------------------------------------------------------------------------
@dataclass
class World:
    orgs: dict[str, Organisation]
    teams: dict[str, Team]
    users: dict[str, Any]
    keys: dict[str, ApiKey]
    raw_keys: dict[str, str]
    team_limits: dict[str, Limit]
    key_limits: dict[str, Limit]
    alerts: dict[str, QuotaAlert]
    audit: dict[str, Any]
    policies: dict[str, GuardrailPolicy]
    runs: dict[str, PlaygroundRun]
    files: dict[str, BatchFile]
    batches: dict[str, Batch]
    idps: dict[str, IdentityProvider]
    rules: dict[str, MappingRule]
    tokens: dict[str, str]  # role → raw admin token
    token_rows: dict[str, AdminToken]
    route: Route
    provider: Provider
    deployment: Deployment
    credential: Credential
    price: ModelPrice
    usage_ids: dict[str, str] = field(default_factory=dict)  # request id → slot

    def member(self, slot: str) -> Any:
        return self.users[MEMBER_OF[slot]]


def _usage(team: Team, user: Any, key: ApiKey | None) -> UsageRecord:
    return UsageRecord.objects.create(
        request_id=f"req-{team.slug}-{user.username}",
        created_at=timezone.now(),
        organisation_id=team.organisation_id,
        team_id=team.pk,
        user_id=user.pk,
        api_key_id=key.pk if key else None,
        key_prefix=key.prefix if key else "",
        source="api" if key else "playground",
        route="smart",
        provider="demo",
        upstream_model="demo-1",
        status_code=200,
        input_tokens=10,
        output_tokens=5,
        cost_usd=Decimal("0.001"),
        latency_ms=100.0,
    )


def seed_cache(world: World) -> None:
    """Two cached answers in every team's namespace (the in-process answer store)."""
    answer_store = store.answer_store()
    for team in world.teams.values():
        for n in (1, 2):
            key = f"{team_prefix(team.pk)}smart:{team.slug}-{n}"
            async_to_sync(answer_store.set)(key, b"{}", 3600)


def cache_keys(team: Team) -> list[str]:
    entries = store.answer_store()._entries  # type: ignore[attr-defined]
    return sorted(k for k in entries if k.startswith(team_prefix(team.pk)))


def build_world() -> World:
    User = get_user_model()
    orgs = {o: Organisation.objects.create(slug=s, name=n) for o, (s, n) in ORGS.items()}
    teams = {
        slot: Team.objects.create(organisation=orgs[o], slug=slug, name=slug.title())
        for slot, (o, slug) in TEAMS.items()
    }
    names = ("alice", "dave", "bob", "carol", "frank", "gina", "eve", "hank", "ivan")
    users = {n: User.objects.create_user(n, f"{n}@example.test", f"pw-{n}-secret") for n in names}
    users["root"] = User.objects.create_superuser("root", "root@example.test", "pw-root-secret")
    for who, org, role in (
        ("alice", "A", OrgRole.PLATFORM_ADMIN),
        ("dave", "A", OrgRole.AUDITOR),
        ("frank", "B", OrgRole.PLATFORM_ADMIN),
    ):
        OrgMembership.objects.create(user=users[who], organisation=orgs[org], role=role)
    for who, slot, team_role in (
        ("bob", "A1", TeamRole.TEAM_ADMIN),
        ("carol", "A1", TeamRole.MEMBER),
        ("gina", "A2", TeamRole.MEMBER),
        ("eve", "B1", TeamRole.MEMBER),
        ("hank", "B2", TeamRole.MEMBER),
    ):
        TeamMembership.objects.create(user=users[who], team=teams[slot], role=team_role)

    provider = make_provider("demo", ProviderKind.DEMO)
    route = Route.objects.create(name="smart")
    deployment = Deployment.objects.create(route=route, provider=provider, upstream_model="demo-1")
    upstream = make_provider("upstream", ProviderKind.OPENAI, "http://127.0.0.1:9/v1")
    credential = credential_create(provider=upstream, name="primary", secret=UPSTREAM_SECRET)
    price = ModelPrice.objects.create(
        provider=provider, model="demo-1", input_per_million=1, output_per_million=2
    )
    keys, raw_keys, team_limits, key_limits, alerts, audit = {}, {}, {}, {}, {}, {}
    policies, runs, files, batches = {}, {}, {}, {}
    for slot, team in teams.items():
        team.allowed_routes.add(route)
        member = users[MEMBER_OF[slot]]
        issued = api_key_create(team=team, name=f"key-{team.slug}", created_by=member)
        keys[slot], raw_keys[slot] = issued.api_key, issued.raw_key
        team_limits[slot] = Limit.objects.create(
            scope="team", scope_id=team.pk, kind="rpm", value=100
        )
        key_limits[slot] = Limit.objects.create(
            scope="key", scope_id=issued.api_key.pk, kind="tpm", value=1000
        )
        alerts[slot] = QuotaAlert.objects.create(
            limit=team_limits[slot], period="2026-01", used=Decimal(90)
        )
        _usage(team, member, issued.api_key)
        audit[slot] = audit_record(
            action="matrix.seeded",
            target_type="team",
            target_id=team.pk,
            target_label=f"{team.organisation.slug}/{team.slug}",
            organisation_id=team.organisation_id,
        )
        policies[slot] = policy_set(
            actor=None,
            scope="team",
            organisation=team.organisation,
            team=team,
            values=PolicyValues(max_messages=5),
        )
        prompt = f"{member.username}-private-prompt"
        runs[slot] = PlaygroundRun.objects.create(
            user=member,
            team=team,
            route="smart",
            messages=[{"role": "user", "content": prompt}],
            answer=f"answer for {team.slug}",
            search_text=prompt,
            request_id=f"req-run-{team.slug}",
        )
        files[slot] = BatchFile.objects.create(
            team=team, purpose="batch", size=2, filename=f"{team.slug}.jsonl", content=b"{}"
        )
        batches[slot] = Batch.objects.create(
            team=team,
            api_key=issued.api_key,
            endpoint="/v1/chat/completions",
            input_file_id=files[slot].public_id,
            status="in_progress",
            expires_at=timezone.now() + timedelta(days=1),
            metadata={"team": team.slug},
        )
    # A second caller in A1: the team admin, in the playground (no key: carol created A1's
    # key and so sees that key's calls).
    _usage(teams["A1"], users["bob"], None)
    idps, rules = {}, {}
    for letter, organisation in orgs.items():
        idps[letter] = idp_create(
            actor=None,
            organisation=organisation,
            entity_id=f"https://idp.{organisation.slug}.test/",
            sso_url=f"https://idp.{organisation.slug}.test/sso",
            x509cert=keypair().cert_pem.decode(),
        )
        rules[letter] = mapping_rule_create(
            actor=None, idp=idps[letter], value=f"{organisation.slug}-admins", role="platform_admin"
        )
    tokens: dict[str, str] = {}
    token_rows: dict[str, AdminToken] = {}
    for name in ROLES[:-1]:
        issued_token = admin_token_create(user=users[name], name="matrix", lifetime_days=30)
        tokens[name], token_rows[name] = issued_token.raw_token, issued_token.token
    world = World(
        orgs,
        teams,
        users,
        keys,
        raw_keys,
        team_limits,
        key_limits,
        alerts,
        audit,
        policies,
        runs,
        files,
        batches,
        idps,
        rules,
        tokens,
        token_rows,
        route,
        provider,
        deployment,
        credential,
        price,
    )
    world.usage_ids = {
        r: s for s, r in ((s, f"req-{t.slug}-{MEMBER_OF[s]}") for s, t in teams.items())
    }
    world.usage_ids["req-quokka-bob"] = "A1"
    seed_cache(world)
    return world


# -- "nothing changed": a fingerprint of every stored row and of the answer store ----------
SKIPPED_MODELS = {"sessions.session"}  # a sign-in writes its session; not tenant data
SKIPPED_FIELDS = {"last_login", "last_used_at"}  # bookkeeping of a sign-in or token use


def fingerprint() -> str:
    digest = hashlib.sha256()
    for model in apps.get_models(include_auto_created=True):
        label = model._meta.label_lower
        if label in SKIPPED_MODELS:
            continue
        names = [f.attname for f in model._meta.concrete_fields if f.name not in SKIPPED_FIELDS]
        rows = model._default_manager.order_by("pk").values_list(*names)
        digest.update(f"{label}:{list(rows)!r}".encode())
    entries = store.answer_store()._entries  # type: ignore[attr-defined]
    digest.update(repr(sorted(entries)).encode())
    return digest.hexdigest()

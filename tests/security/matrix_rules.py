"""The vocabulary of the permission matrix's expectations (tests/security/matrix_table.py
and matrix_api_table.py): an Entry per named URL pattern, rule builders and URL pieces.

Slots: A1, A2, B1 are objects of those teams (A1 the own team of bob and carol, A2 a sibling
team of organisation A, B1 a team of organisation B); A and B are the organisations; "gw" a
gateway-wide object (provider, route, deployment); "A1+B1" is team A1's URL carrying a child
object of B1 (a key, a member, a rule): 404 where the parent is allowed. "-" is no object.

Rules take (role, slot) of a signed-in role; anonymous users are expected at the login page
(dashboard) or 401 (management API), whatever the rule. Decided from the issues' text:
#8 "platform admin sees everything; team admin manages only their team; auditor reads only;
a member sees their own usage" and #13 "no cross-team reads or writes". Where the code's own
documented convention applies (a page a role may not use is 403, an object of a team the
role may not see is 404, a form refusing a choice it does not offer is 400), it is named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.security.matrix_support import (
    MEMBER_OF,
    ORGS,
    TEAMS,
    Outcome,
    World,
    admins_org,
    has_role_in_org,
    reads_gateway,
    reads_org,
    sees_team,
    team_admin,
)
from tests.sso_unit.saml_support import keypair

Out = Outcome
Rule = Callable[[str, str], Outcome]
TEAM_SLOTS = ("A1", "A2", "B1")
CHILD_SLOTS = (*TEAM_SLOTS, "A1+B1")
ORG_SLOTS = ("A", "B")


@dataclass(frozen=True)
class Entry:
    url: Callable[[World, str], str]
    get: Rule | None = None
    write: Rule | None = None
    slots: tuple[str, ...] = ("-",)
    data: Callable[[World, str], dict[str, Any]] = lambda w, s: {}
    done: Callable[[World, str], bool] | None = None  # an allowed write made its change
    changes: bool | None = True  # False: read-only POST; None: effect not in the database
    method: str = "POST"
    htmx: bool = False
    api: bool = False  # management API: admin token, JSON body, 401 for anonymous
    get_slots: tuple[str, ...] | None = None
    # A parent the role may use with another team's child in the URL: 404, as if missing.
    mixed: Rule = lambda r, s: Out.NOT_FOUND
    # Set where the allowed write cannot run inside this suite's rolled-back transaction (it
    # calls a provider, or the database from a worker thread): the refusals are still tried
    # here; the allowed case is tested where named.
    allowed_elsewhere: str = ""


# -- rule builders ---------------------------------------------------------------------------
def anyone(role: str, slot: str) -> Outcome:
    return Out.OK


def page(may: Callable[[str], bool], then: Rule = anyone) -> Rule:
    """A page or action some roles may not use at all: 403 for them."""
    return lambda role, slot: then(role, slot) if may(role) else Out.FORBIDDEN


def act(view: Callable[[str, str], bool], may: Callable[[str, str], bool]) -> Rule:
    """An object: 404 if the role may not see it, 403 if it may see but not change it."""
    return lambda r, s: (
        Out.NOT_FOUND if not view(r, s) else (Out.OK if may(r, s) else Out.FORBIDDEN)
    )


def view(see: Callable[[str, str], bool]) -> Rule:
    return lambda r, s: Out.OK if see(r, s) else Out.NOT_FOUND


def allowed_if(may: Callable[[str, str], bool], otherwise: Outcome = Out.FORBIDDEN) -> Rule:
    return lambda r, s: Out.OK if may(r, s) else otherwise


def root(role: str) -> bool:
    return role == "root"


def uses_guardrails(role: str) -> bool:
    return reads_gateway(role) or any(team_admin(role, s) for s in TEAMS)


def sees_policy(role: str, slot: str) -> bool:
    """A team policy: platform admins and auditors of its organisation, its team admins."""
    return role == "root" or reads_org(role, slot[0]) or team_admin(role, slot)


def sees_org_sso(role: str, slot: str) -> bool:
    return reads_org(role, slot)


def admins_sso(role: str, slot: str) -> bool:
    return admins_org(role, slot)


def team_create_rule(role: str, slot: str) -> Outcome:
    """Dashboard: roles who administer no organisation get 403; a platform admin naming
    another organisation gets the form back (its choices are their own organisations)."""
    if admins_org(role, slot):
        return Out.OK
    return Out.REFUSED if any(admins_org(role, o) for o in ORGS) else Out.FORBIDDEN


def api_team_create_rule(role: str, slot: str) -> Outcome:
    if not (role == "root" or has_role_in_org(role, slot)):
        return Out.NOT_FOUND
    return Out.OK if admins_org(role, slot) else Out.FORBIDDEN


def usage_filter_rule(role: str, slot: str) -> Outcome:
    """Usage filtered by a team: the form offers only teams the role sees (400 otherwise)."""
    return Out.OK if slot == "-" or sees_team(role, slot) else Out.REFUSED


def child_of(rule: Rule) -> Rule:
    """Another team's child under a parent: the parent's refusal, or 404 where the parent
    would be allowed (the child is not in it)."""
    return lambda r, s: Out.NOT_FOUND if (o := rule(r, parent(s))) is Out.OK else o


def run_author(role: str, slot: str) -> bool:
    """A playground run is its author's alone (docs/playground.md), whoever else asks."""
    return slot == "-" or MEMBER_OF.get(slot) == role


# -- URL pieces ------------------------------------------------------------------------------
def parent(slot: str) -> str:
    return slot.split("+")[0]


def child(slot: str) -> str:
    return slot.split("+")[-1]


def team_id(w: World, s: str) -> int:
    return w.teams[parent(s)].pk


def team_query(w: World, s: str) -> str:
    return "" if s == "-" else f"?team={w.teams[s].pk}"


def org_slug(s: str) -> str:
    return ORGS[parent(s)][0]


def member_id(w: World, s: str) -> int:
    return w.member(child(s)).pk


ROUTE_FORM = {
    "description": "",
    "strategy": "ordered",
    "max_retries": "3",
    "backoff_base_seconds": "0.5",
    "backoff_cap_seconds": "10",
    "timeout_seconds": "60",
    "fallback_on_errors": "on",
    "cache_mode": "off",
    "cache_scope": "team",
    "cache_ttl_seconds": "600",
    "semantic_threshold": "0.97",
}
POLICY_FORM = {"enabled": "on", "rules": "", "allowed_params": ""}


def idp_form(w: World, s: str) -> dict[str, Any]:
    return {
        "entity_id": f"https://idp.{org_slug(s)}.test/",
        "x509cert": keypair().cert_pem.decode(),
        "sso_url": "https://idp.example.test/moved",
        "enabled": "on",
        "email_attribute": "email",
        "groups_attribute": "groups",
    }

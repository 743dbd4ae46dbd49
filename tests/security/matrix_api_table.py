"""The expectations of the permission matrix for the management API (personal admin tokens,
the same rules as the dashboard; vocabulary: tests/security/matrix_rules.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aigateway.quotas.models import Limit
from aigateway.routing.models import BreakerEvent
from auth.models import ApiKey, Team, TeamMembership
from tests.security.matrix_rules import (
    CHILD_SLOTS,
    ORG_SLOTS,
    TEAM_SLOTS,
    Entry,
    Out,
    act,
    allowed_if,
    anyone,
    api_team_create_rule,
    child,
    member_id,
    org_slug,
    page,
    root,
    team_id,
    view,
)
from tests.security.matrix_support import (
    World,
    changes_team,
    manages_people,
    reads_gateway,
    sees_team,
)

# -- the management API (personal admin tokens; the same rules as the dashboard) ------------
M = "/api/v1"


def _api(url: Callable[[World, str], str], **kwargs: Any) -> Entry:
    return Entry(url, api=True, **kwargs)


def token_owner(role: str, slot: str) -> bool:
    return slot == f"token:{role}"


MANAGEMENT: dict[str, Entry] = {
    "management:me": _api(lambda w, s: f"{M}/me", get=anyone),
    "management:list_teams": _api(lambda w, s: f"{M}/teams", get=anyone),
    "management:create_team": _api(
        lambda w, s: f"{M}/teams",
        write=api_team_create_rule,
        slots=ORG_SLOTS,
        data=lambda w, s: {"organisation": org_slug(s), "slug": "newteam", "name": "Newteam"},
        done=lambda w, s: Team.objects.filter(
            slug="newteam", organisation__slug=org_slug(s)
        ).exists(),
    ),
    "management:get_team": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}", get=view(sees_team), slots=TEAM_SLOTS
    ),
    "management:update_team": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}",
        method="PATCH",
        slots=TEAM_SLOTS,
        write=act(sees_team, changes_team),
        data=lambda w, s: {"name": "Renamed"},
        done=lambda w, s: Team.objects.get(pk=team_id(w, s)).name == "Renamed",
    ),
    "management:delete_team": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}",
        method="DELETE",
        slots=TEAM_SLOTS,
        write=act(sees_team, changes_team),
        done=lambda w, s: not Team.objects.filter(pk=team_id(w, s)).exists(),
    ),
    "management:list_members": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/members", get=view(sees_team), slots=TEAM_SLOTS
    ),
    "management:add_member": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/members",
        slots=TEAM_SLOTS,
        write=act(sees_team, manages_people),
        data=lambda w, s: {"username": "ivan"},
        done=lambda w, s: TeamMembership.objects.filter(
            team_id=team_id(w, s), user__username="ivan"
        ).exists(),
    ),
    "management:change_member": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/members/{member_id(w, s)}",
        method="PATCH",
        slots=CHILD_SLOTS,
        write=act(sees_team, manages_people),
        data=lambda w, s: {"role": "team_admin"},
        done=lambda w, s: (
            TeamMembership.objects.get(team_id=team_id(w, s), user_id=member_id(w, s)).role
            == "team_admin"
        ),
    ),
    "management:remove_member": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/members/{member_id(w, s)}",
        method="DELETE",
        slots=CHILD_SLOTS,
        write=act(sees_team, manages_people),
        done=lambda w, s: (
            not TeamMembership.objects.filter(
                team_id=team_id(w, s), user_id=member_id(w, s)
            ).exists()
        ),
    ),
    "management:list_keys": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/keys", get=view(sees_team), slots=TEAM_SLOTS
    ),
    "management:create_key": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/keys",
        slots=TEAM_SLOTS,
        write=act(sees_team, manages_people),
        data=lambda w, s: {"name": "api-key"},
        done=lambda w, s: ApiKey.objects.filter(team_id=team_id(w, s), name="api-key").exists(),
    ),
    "management:get_key": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/keys/{w.keys[child(s)].pk}",
        get=view(sees_team),
        slots=CHILD_SLOTS,
    ),
    "management:revoke_key": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/keys/{w.keys[child(s)].pk}",
        method="DELETE",
        slots=CHILD_SLOTS,
        write=act(sees_team, manages_people),
        done=lambda w, s: ApiKey.objects.get(pk=w.keys[s].pk).revoked_at is not None,
    ),
    "management:list_limits": _api(lambda w, s: f"{M}/limits", get=anyone),
    "management:set_limit": _api(
        lambda w, s: f"{M}/limits",
        slots=TEAM_SLOTS,
        write=allowed_if(manages_people),
        data=lambda w, s: {"scope": "key", "scope_id": w.keys[s].pk, "kind": "rpm", "value": 77},
        done=lambda w, s: Limit.objects.filter(
            scope="key", scope_id=w.keys[s].pk, kind="rpm", value=77
        ).exists(),
    ),
    "management:get_limit": _api(
        lambda w, s: f"{M}/limits/{w.key_limits[s].pk}", get=view(sees_team), slots=TEAM_SLOTS
    ),
    "management:change_limit": _api(
        lambda w, s: f"{M}/limits/{w.key_limits[s].pk}",
        method="PATCH",
        slots=TEAM_SLOTS,
        write=act(sees_team, manages_people),
        data=lambda w, s: {"value": 55},
        done=lambda w, s: Limit.objects.get(pk=w.key_limits[s].pk).value == 55,
    ),
    "management:delete_limit": _api(
        lambda w, s: f"{M}/limits/{w.team_limits[s].pk}",
        method="DELETE",
        slots=TEAM_SLOTS,
        write=act(sees_team, changes_team),
        done=lambda w, s: not Limit.objects.filter(pk=w.team_limits[s].pk).exists(),
    ),
    "management:usage": _api(lambda w, s: f"{M}/usage?group_by=team", get=anyone),
    "management:list_routes": _api(lambda w, s: f"{M}/routes", get=page(reads_gateway)),
    "management:get_route": _api(lambda w, s: f"{M}/routes/{w.route.pk}", get=page(reads_gateway)),
    "management:list_deployments": _api(lambda w, s: f"{M}/deployments", get=page(reads_gateway)),
    "management:get_deployment": _api(
        lambda w, s: f"{M}/deployments/{w.deployment.pk}", get=page(reads_gateway)
    ),
    "management:list_breakers": _api(lambda w, s: f"{M}/breakers", get=page(reads_gateway)),
    "management:list_breaker_events": _api(
        lambda w, s: f"{M}/breakers/events", get=page(reads_gateway)
    ),
    "management:force_breaker": _api(
        lambda w, s: f"{M}/deployments/{w.deployment.pk}/breaker",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"action": "open", "reason": "matrix"},
        done=lambda w, s: BreakerEvent.objects.filter(deployment=w.deployment).exists(),
    ),
    "management:list_audit_events": _api(lambda w, s: f"{M}/audit-events", get=page(reads_gateway)),
    "management:list_tokens": _api(lambda w, s: f"{M}/tokens", get=anyone),
    # A token never mints tokens (a leaked one must not outlive its revocation): 403 for all.
    "management:create_token": _api(
        lambda w, s: f"{M}/tokens",
        write=lambda r, s: Out.FORBIDDEN,
        data=lambda w, s: {"name": "minted"},
    ),
    "management:revoke_token": _api(
        lambda w, s: f"{M}/tokens/{w.token_rows[s.removeprefix('token:')].pk}",
        method="DELETE",
        slots=("token:alice", "token:frank"),
        write=view(token_owner),
        done=lambda w, s: (
            w.token_rows[s.removeprefix("token:")]
            .__class__.objects.get(pk=w.token_rows[s.removeprefix("token:")].pk)
            .revoked_at
            is not None
        ),
    ),
}

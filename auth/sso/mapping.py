"""What a set of IdP groups yields under an IdP's mapping rules. Pure: used at every SSO
sign-in and by the preview on the rules page, so both always agree."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from auth.models import OrgRole, TeamRole
from auth.sso.models import IdentityProvider, MappedRole, MappingRule

# Higher wins when several rules give one scope a role.
_ORG_RANK = {OrgRole.MEMBER: 1, OrgRole.AUDITOR: 2, OrgRole.PLATFORM_ADMIN: 3}
_TEAM_RANK = {TeamRole.MEMBER: 1, TeamRole.TEAM_ADMIN: 2}


@dataclass(frozen=True)
class MappingResult:
    org_role: str | None  # OrgRole in the IdP's organisation, or None
    team_roles: Mapping[int, str] = field(default_factory=dict)  # team id → TeamRole
    matched: Sequence[MappingRule] = ()

    @property
    def grants_anything(self) -> bool:
        return self.org_role is not None or bool(self.team_roles)


def rules_of(idp: IdentityProvider) -> list[MappingRule]:
    return list(idp.rules.select_related("team").order_by("value", "role", "id"))


def groups_from_attributes(idp: IdentityProvider, attributes: Mapping[str, object]) -> list[str]:
    """Every value of the IdP's groups attribute (allauth's attribute_mapping keeps only the
    first one; the raw attributes in extra_data keep all)."""
    raw = attributes.get(idp.groups_attribute) or []
    values = raw if isinstance(raw, list | tuple) else [raw]
    return [str(v) for v in values if v is not None and str(v) != ""]


def resolve(rules: Iterable[MappingRule], groups: Iterable[str]) -> MappingResult:
    """Exact, case-sensitive matches (Entra sends group object ids: GUIDs match as text)."""
    have = set(groups)
    org_role: str | None = None
    team_roles: dict[int, str] = {}
    matched = []
    for rule in rules:
        if rule.value not in have:
            continue
        matched.append(rule)
        if rule.team_id is not None:
            role = TeamRole.TEAM_ADMIN if rule.role == MappedRole.TEAM_ADMIN else TeamRole.MEMBER
            current = team_roles.get(rule.team_id)
            if current is None or _TEAM_RANK[role] > _TEAM_RANK[TeamRole(current)]:
                team_roles[rule.team_id] = role
            continue
        if rule.role == MappedRole.TEAM_ADMIN:
            continue  # refused when created (a team admin rule names its team)
        role_org = OrgRole(rule.role)
        if org_role is None or _ORG_RANK[role_org] > _ORG_RANK[OrgRole(org_role)]:
            org_role = role_org
    return MappingResult(org_role=org_role, team_roles=team_roles, matched=tuple(matched))

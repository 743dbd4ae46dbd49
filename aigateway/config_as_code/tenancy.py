"""Planning organisations, teams, memberships and team API keys."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model

from aigateway.config_as_code import audited
from aigateway.config_as_code.planning import Planner, fmt, save_fields
from aigateway.config_as_code.specs import ApiKeySpec, ConfigError, MemberSpec, OrgSpec, TeamSpec
from aigateway.routing.models import Route
from auth.keys import display_prefix, hash_api_key
from auth.models import ApiKey, Organisation, OrgMembership, Team, TeamMembership
from auth.services import api_key_create, api_key_revoke, api_key_set_routes


def find_user(ref: str, path: str = "") -> Any:
    """Match a file's user reference on username, then (if it looks like one) on email."""
    users = get_user_model().objects
    user = users.filter(username=ref).first()
    if user is not None or "@" not in ref:
        return user
    matches = list(users.filter(email__iexact=ref)[:2])
    if len(matches) > 1:
        raise ConfigError(f"{path}: '{ref}' is ambiguous: several users have that email")
    return matches[0] if matches else None


def _create_user(ref: str) -> None:
    users = get_user_model().objects
    audited.create(users.create_user, username=ref, email=ref if "@" in ref else "")


def plan_organisation(p: Planner, spec: OrgSpec) -> None:
    org = Organisation.objects.filter(slug=spec.slug).first()
    wanted = {"name": spec.name, "audit_retention_days": spec.audit_retention_days}
    if org is None:
        create = partial(audited.create, Organisation.objects.create, slug=spec.slug, **wanted)
        p.add("create", "organisation", spec.slug, "", create)
    p.update("organisation", spec.slug, org, wanted)
    rows = list(org.memberships.select_related("user")) if org else []
    owner = lambda: {"organisation": Organisation.objects.get(slug=spec.slug)}  # noqa: E731
    _members(p, "org member", spec.slug, spec.members, rows, OrgMembership, owner)
    for team in spec.teams:
        _team(p, spec, team, org)


def _members(
    p: Planner,
    kind: str,
    label: str,
    specs: tuple[MemberSpec, ...],
    rows: list[Any],
    model: type[OrgMembership | TeamMembership],
    owner: Callable[[], dict[str, Any]],
) -> None:
    """Set a membership list exactly; users missing from the database are created."""
    by_user = {m.user_id: m for m in rows}
    seen: dict[int, str] = {}
    for spec in specs:
        name = f"{label}/{spec.user}"
        user = find_user(spec.user, f"{spec.path}.user")
        if user is None and spec.user not in p.new_users:
            p.new_users.add(spec.user)
            p.add("create", "user", spec.user, "", partial(_create_user, spec.user))
        if user is not None:
            if user.pk in seen:
                raise ConfigError(
                    f"{spec.path}.user: '{spec.user}' is the same user as '{seen[user.pk]}'"
                )
            seen[user.pk] = spec.user
            row = by_user.pop(user.pk, None)
            if row is not None:
                if row.role != spec.role:
                    save = partial(audited.save, row, {"role": spec.role})
                    p.add("update", kind, name, f"role {row.role} → {spec.role}", save)
                continue

        def create(ref: str = spec.user, role: str = spec.role) -> None:
            audited.create(model.objects.create, user=find_user(ref), role=role, **owner())

        p.add("create", kind, name, spec.role, create)
    for row in by_user.values():
        remove = partial(audited.delete, row)
        p.add("delete", kind, f"{label}/{row.user.get_username()}", "removed", remove)


def _team(p: Planner, org_spec: OrgSpec, spec: TeamSpec, org: Organisation | None) -> None:
    label, routes = f"{org_spec.slug}/{spec.slug}", sorted(spec.routes)
    p.check_routes(spec.routes, f"{spec.path}.routes")
    team = Team.objects.filter(organisation=org, slug=spec.slug).first() if org else None
    get_team = partial(Team.objects.get, organisation__slug=org_spec.slug, slug=spec.slug)

    def set_routes() -> None:
        team = get_team()
        with audited.changing(team):
            team.allowed_routes.set(Route.objects.filter(name__in=spec.routes))

    def create() -> None:
        org = Organisation.objects.get(slug=org_spec.slug)
        team = Team.objects.create(
            organisation=org, slug=spec.slug, name=spec.name, log_prompts=spec.log_prompts,
            playground_history_visible_to_admins=spec.playground_history_visible_to_admins,
        )  # fmt: skip
        team.allowed_routes.set(Route.objects.filter(name__in=spec.routes))
        audited.created(team)

    if team is None:
        p.add("create", "team", label, f"routes {fmt(routes)}", create)
    else:
        p.update("team", label, team, {
            "name": spec.name, "log_prompts": spec.log_prompts,
            "playground_history_visible_to_admins": spec.playground_history_visible_to_admins,
        })  # fmt: skip
        current = sorted(team.allowed_routes.values_list("name", flat=True))
        if current != routes:
            notes = f"routes {fmt(current)} → {fmt(routes)}"
            p.add("update", "team", label, notes, set_routes)
    rows = list(team.memberships.select_related("user")) if team else []
    owner = lambda: {"team": get_team()}  # noqa: E731
    _members(p, "team member", label, spec.members, rows, TeamMembership, owner)
    keys = {k.name: k for k in team.api_keys.prefetch_related("allowed_routes")} if team else {}
    for key_spec in spec.api_keys:
        key = keys.pop(key_spec.name, None)
        _api_key(p, f"{label}/{key_spec.name}", key_spec, key, get_team)
    for key in keys.values() if p.prune_keys else ():
        if key.revoked_at is None:
            note = "revoked (not in the file; --prune-keys)"
            p.add("revoke", "api key", f"{label}/{key.name}", note, partial(_revoke, key))


def _api_key(
    p: Planner, label: str, spec: ApiKeySpec, key: ApiKey | None, get_team: Callable[[], Team]
) -> None:
    p.check_routes(spec.routes, f"{spec.path}.routes")
    raw = None
    if spec.env_var:
        raw = p.env(spec.env_var, f"{spec.path}.secret", "API key secrets are read at apply time")
        digest = hash_api_key(raw)
        owner = ApiKey.objects.filter(key_hash=digest).values_list("pk", flat=True).first()
        if (owner is not None and (key is None or owner != key.pk)) or digest in p.key_hashes:
            raise ConfigError(
                f"{spec.path}.secret: env:{spec.env_var} holds the key of another API key"
            )
        p.key_hashes.add(digest)
    routes = sorted(spec.routes)
    if key is None:
        how = f"imported from env:{spec.env_var}" if raw else "new key, shown once"
        notes = ["revoked" if spec.revoked else how]
        notes += [f"routes {fmt(routes)}"] if routes else []
        create = partial(_create_key, p, label, spec, raw, get_team)
        p.add("create", "api key", label, "; ".join(notes), create)
        return
    if not spec.revoked and key.revoked_at is not None:
        raise ConfigError(
            f"{spec.path}.revoked: API key {label} is revoked and revocation cannot be undone; "
            "declare revoked: true, or declare a key with a new name"
        )
    values: dict[str, Any] = {}
    notes = []
    if raw is not None and hash_api_key(raw) != key.key_hash:
        values |= {"key_hash": hash_api_key(raw), "prefix": display_prefix(raw)}
        notes.append("secret changed")
    if key.expires_at != spec.expires_at:
        values["expires_at"] = spec.expires_at
        notes.append(f"expires_at {fmt(key.expires_at)} → {fmt(spec.expires_at)}")
    current = sorted(r.name for r in key.allowed_routes.all())
    if current != routes:
        notes.append(f"routes {fmt(current)} → {fmt(routes)}")

    def update() -> None:
        with audited.changing(key):
            if values:
                save_fields(key, values)
            api_key_set_routes(api_key=key, route_names=spec.routes)

    if notes:
        p.add("update", "api key", label, "; ".join(notes), update)
    if spec.revoked and key.revoked_at is None:
        p.add("revoke", "api key", label, "revoked", partial(_revoke, key))


def _revoke(key: ApiKey) -> None:
    with audited.changing(key, "revoked"):
        api_key_revoke(api_key=key)


def _create_key(
    p: Planner, label: str, spec: ApiKeySpec, raw: str | None, get_team: Callable[[], Team]
) -> None:
    issued = api_key_create(
        team=get_team(),
        name=spec.name,
        raw_key=raw,
        route_names=spec.routes,
        expires_at=spec.expires_at,
    )
    if spec.revoked:
        api_key_revoke(api_key=issued.api_key)
    audited.created(issued.api_key)
    if raw is None and not spec.revoked:
        p.issued.append((label, issued.raw_key))

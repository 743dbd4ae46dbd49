"""The permission and tenancy matrix (issues #8 and #13): every named URL of the dashboard,
its htmx fragments, the SSO pages, the playground pages and the management API, tried by
every role on its own team's object, a sibling team's and another organisation's, GET and
write. The expected outcome of each is in tests/security/matrix_table.py and
matrix_api_table.py.

For each case: the outcome must be the expected one; a refused write (and every GET) must
leave every stored row and the answer store exactly as they were; an allowed write must make
its change; and no allowed response may contain a marker of a team, organisation or
playground prompt the role may not see. Each case runs in a rolled-back transaction, so the
cases do not disturb one another.

Completeness: the URL resolver is walked and every named pattern must be in the table, in
API_DOORS (the key-authenticated /v1 doors, tried by test_tenancy_doors.py), in the Django
admin family (checked below) or in EXCLUDED with the reason. A view added without an entry
fails test_every_named_url_has_an_expectation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.security.matrix_api_table import MANAGEMENT
from tests.security.matrix_rules import Entry
from tests.security.matrix_support import (
    ROLES,
    TEAMS,
    Outcome,
    World,
    body_text,
    build_world,
    classify,
    fingerprint,
    forbidden_markers,
    seed_cache,
)
from tests.security.matrix_table import PLAYGROUND, SSO, WEB

OK = Outcome.OK
ENTRIES: dict[str, Entry] = {**WEB, **SSO, **PLAYGROUND, **MANAGEMENT}

# The /v1 doors take team API keys, not roles: test_tenancy_doors.py tries each with keys of
# A1, A2 and B1 against every team's objects.
API_DOORS = {
    "api:chat-completions",
    "api:embeddings",
    "api:models",
    "api:model",
    "api:messages",
    "api:messages-count-tokens",
    "api:batches:files",
    "api:batches:file",
    "api:batches:file-content",
    "api:batches:batches",
    "api:batches:batch",
    "api:batches:batch-cancel",
    "playground:stream",
}
EXCLUDED = {
    # Signing in and out: open to everyone by nature (tests/web/test_login_and_dashboard.py,
    # tests/sso_unit/test_break_glass.py).
    "web:login": "sign-in page",
    "web:logout": "sign-out",
    # Liveness, readiness: no data (test_public_endpoints_reveal_no_tenant_data below).
    "web:healthz": "liveness",
    "observability:readyz": "readiness",
    # Prometheus: guarded by a bearer token or an address allow-list, not by a role
    # (tests/observability/test_metrics.py).
    "observability:metrics": "token or allow-listed address",
    # The API's own description: no tenant data (checked below).
    "management:openapi-json": "OpenAPI document",
    "management:openapi-view": "API docs page",
    "management:api-root": "API root",
    # SAML SP protocol endpoints and the allauth names they reverse: reached by the IdP and
    # the browser before anyone is signed in; signatures, replay and organisation binding are
    # tested in tests/sso and tests/sso_unit.
    "sso_finish_acs": "SAML",
    "sso_login": "SAML",
    "sso_metadata": "SAML",
    "sso_sls": "SAML",
    "saml_acs": "allauth SAML",
    "saml_finish_acs": "allauth SAML",
    "saml_sls": "allauth SAML",
    "saml_metadata": "allauth SAML",
    "saml_login": "allauth SAML",
    "sso_logout": "sign-out",
    "socialaccount_login_cancelled": "allauth",
    "socialaccount_login_error": "allauth",
    "account_login": "redirect to web:login",
    "socialaccount_connections": "redirect to /",
}
ADMIN_FAMILY = "admin:"  # Django admin: operators (staff) only, test_the_django_admin_...
ADMIN_OPEN = {"admin:login", "admin:logout"}  # the admin's own sign-in and sign-out


def named_patterns_with_objects(
    patterns: list[Any] | None = None, namespace: str = ""
) -> Iterator[tuple[str, URLPattern]]:
    """Every named URL pattern of the resolver, with its namespaced name."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from named_patterns_with_objects(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), pattern


def named_patterns() -> set[str]:
    return {name for name, _ in named_patterns_with_objects()}


def test_every_named_url_has_an_expectation() -> None:
    names = named_patterns()
    unknown = sorted(
        n
        for n in names
        if n not in ENTRIES
        and n not in API_DOORS
        and n not in EXCLUDED
        and not n.startswith(ADMIN_FAMILY)
    )
    assert not unknown, f"URL names without a permission-matrix entry: {unknown}"
    stale = sorted((set(ENTRIES) | API_DOORS | set(EXCLUDED)) - names)
    assert not stale, f"matrix entries for URL names that no longer exist: {stale}"


# -- the matrix ------------------------------------------------------------------------------
@pytest.fixture
def world(db: None) -> World:
    return build_world()


def clients(world: World, *, api: bool) -> dict[str, Client]:
    made = {}
    for role in ROLES:
        if role == "anonymous":
            made[role] = Client()
        elif api:
            made[role] = Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens[role]}")
        else:
            made[role] = Client()
            made[role].force_login(world.users[role])
    return made


def send(client: Client, entry: Entry, method: str, url: str, data: dict[str, Any]) -> Any:
    headers = {"HX-Request": "true"} if entry.htmx else {}
    if method == "GET":
        return client.get(url, headers=headers)
    if entry.api:
        return client.generic(method, url, json.dumps(data), content_type="application/json")
    return client.post(url, data, headers=headers)


def expected(entry: Entry, rule: Any, role: str, slot: str) -> Outcome:
    if role == "anonymous":
        return Outcome.UNAUTH if entry.api else Outcome.LOGIN
    if "+" in slot:
        return entry.mixed(role, slot)
    return rule(role, slot)


def run_case(
    world: World, client: Client, entry: Entry, role: str, slot: str, method: str, rule: Any
) -> list[str]:
    """One request in a rolled-back transaction; the failures it shows, in sentences."""
    want = expected(entry, rule, role, slot)
    where = f"{role} {method} {slot}"
    failures = []
    with transaction.atomic():
        seed_cache(world)
        url = entry.url(world, slot)
        before = fingerprint()
        data = {} if method == "GET" else entry.data(world, slot)
        response = send(client, entry, method, url, data)
        got = classify(response)
        if got is not want:
            failures.append(
                f"{where} {url}: {want.value} expected, got {response.status_code} "
                f"({got.value}) {response.get('Location', '')}"
            )
        allowed_write = method != "GET" and want is Outcome.OK and got is Outcome.OK
        if allowed_write and entry.changes:
            if fingerprint() == before:
                failures.append(f"{where}: allowed, but nothing changed")
            elif entry.done is not None and not entry.done(world, slot):
                failures.append(f"{where}: allowed, but not the expected change")
        elif not (allowed_write and entry.changes is None) and fingerprint() != before:
            failures.append(f"{where} {url}: {got.value}, yet something stored changed")
        if got is Outcome.OK:
            text = body_text(response).lower()
            leaked = sorted(m for m in forbidden_markers(role) if m in text)
            if leaked:
                failures.append(f"{where} {url}: the response shows {leaked}")
        transaction.set_rollback(True)
    return failures


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_each_role_gets_what_the_matrix_says(world: World, name: str) -> None:
    entry = ENTRIES[name]
    failures = []
    for role, client in clients(world, api=entry.api).items():
        if entry.get is not None:
            for slot in entry.get_slots or entry.slots:
                failures += run_case(world, client, entry, role, slot, "GET", entry.get)
        if entry.write is not None:
            for slot in entry.slots:
                if entry.allowed_elsewhere and expected(entry, entry.write, role, slot) is OK:
                    continue  # see Entry.allowed_elsewhere
                failures += run_case(world, client, entry, role, slot, entry.method, entry.write)
    assert not failures, f"{name}:\n" + "\n".join(failures)


# -- the Django admin and the public endpoints ----------------------------------------------
def _admin_urls(world: World) -> Iterator[tuple[str, str]]:
    from django.contrib.contenttypes.models import ContentType
    from django.urls import reverse

    values = {
        "object_id": world.teams["B1"].pk,
        "app_label": "identity",
        "id": world.users["frank"].pk,
        "content_type_id": ContentType.objects.get_for_model(type(world.teams["B1"])).pk,
    }
    for name, pattern in sorted(named_patterns_with_objects(), key=lambda p: p[0]):
        if name.startswith(ADMIN_FAMILY) and name not in ADMIN_OPEN:
            kwargs = {k: values[k] for k in pattern.pattern.regex.groupindex}
            yield name, reverse(name, kwargs=kwargs)


OPERATOR = {Outcome.OK, Outcome.FORBIDDEN, Outcome.NOT_FOUND}


def test_the_django_admin_is_for_the_gateway_operator_only(world: World) -> None:
    """Platform admins, auditors and team roles are not staff: every admin URL sends them
    (and anonymous users) to the admin's sign-in; the operator gets the page."""
    failures, web = [], clients(world, api=False)
    urls = list(_admin_urls(world))
    assert len(urls) > 50  # every registered model's admin pages
    for name, url in urls:
        for role, client in web.items():
            with transaction.atomic():
                got = classify(client.get(url))
                # The operator gets the page, or the admin's own answer where a model admin
                # allows no adding or deleting (audit events, IdPs) or the object is missing.
                want = OPERATOR if role == "root" else {Outcome.ADMIN_LOGIN}
                if got not in want:
                    failures.append(f"{role} GET {name} {url}: {got.value}")
                transaction.set_rollback(True)
    assert not failures, "\n".join(failures)


PUBLIC = ("/healthz", "/readyz", "/api/schema", "/api/docs", "/login/")


def test_public_endpoints_reveal_no_tenant_data(world: World) -> None:
    # Team slugs only: organisation names are public on the sign-in page (an SSO button per
    # organisation) and the API docs use "acme" in examples.
    every_marker = {slug for _, slug in TEAMS.values()}
    for url in PUBLIC:
        response = Client().get(url)
        assert response.status_code < 500, url
        text = body_text(response).lower()
        assert not [m for m in every_marker if m in text], url

"""Fixtures for SAML SSO against real IdPs: two pysaml2 IdPs, the live gateway as the SP.

The IdPs (tests/sso/idp.py) and the live gateway (uvicorn in a thread) run for the whole
session; each test gets the IdPs reset (users, SP trust), a fresh database with the cast, and
both organisations configured through auth.sso.services, as an admin would.

acme's IdP knows ann (staff + research), ben (auditor + research lead), oscar (no mapped
group). globex's IdP has its own ann with the SAME uid as acme's ann, in globex-sales.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# tests/browser's `page` fixture, registered for this folder by the import; it runs on the
# `live_gateway` and `chromium` below. Only test_browser_sso.py asks for it.
from tests.browser.conftest import launched_chromium, page  # noqa: F401
from tests.conftest import LiveGateway, serve_asgi
from tests.sso.driver import SsoDriver
from tests.sso.idp import TestIdp

UID_ANN = "u-ann-7f3a"  # the same uid at both IdPs: must still give two accounts

ACME_RULES = [
    # (group value, role, team slug or None)
    ("acme-admins", "platform_admin", None),
    ("acme-auditors", "auditor", None),
    ("acme-staff", "member", None),
    ("acme-research", "member", "research"),
    ("acme-research-leads", "team_admin", "research"),
]
GLOBEX_RULES = [
    ("globex-admins", "platform_admin", None),
    ("globex-sales", "member", "sales"),
]


def _sqlite_without_fsync(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=OFF")


@pytest.fixture(autouse=True)
def _no_fsync_for_the_test_database() -> Iterator[None]:
    """A throw-away test database needs no fsync. Every SSO test writes a few dozen small
    transactions and flushes all tables afterwards; on a busy disk the fsyncs took more than
    half the run (measured: 74 s -> 33 s for this folder). Applies to the connections of this
    thread and of the gateway's threads opened during the test; PostgreSQL is untouched."""
    from django.db import connection
    from django.db.backends.signals import connection_created

    connection_created.connect(_sqlite_without_fsync)
    if connection.vendor == "sqlite" and connection.connection is not None:
        _sqlite_without_fsync(None, connection)
    yield
    connection_created.disconnect(_sqlite_without_fsync)


@dataclass
class _SharedGateway:
    stack: ExitStack
    gateway: LiveGateway | None = None


@pytest.fixture(scope="session")
def _shared_gateway(django_db_setup: None, django_db_blocker: Any) -> Iterator[_SharedGateway]:
    with ExitStack() as stack:
        yield _SharedGateway(stack)
        # The server's lifespan shutdown flushes buffered records to the database: allow it
        # (pytest-django blocks the database outside tests; the test database still exists).
        with django_db_blocker.unblock():
            stack.close()


@pytest.fixture
def live_gateway(transactional_db: None, _shared_gateway: _SharedGateway) -> LiveGateway:
    """The real ASGI app (with /static/, for the browser test) under uvicorn in a thread.

    One server for all SSO tests of this process: starting and stopping uvicorn per test cost
    more than the tests themselves. It starts inside the first test, so its start-up may use
    the database; tests stay isolated by the database flush, the process-state fixtures of
    tests/conftest.py and a fresh cookie jar per driver/browser context."""
    if _shared_gateway.gateway is None:
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        from aigateway.asgi import application

        server = serve_asgi(ASGIStaticFilesHandler(application))
        _shared_gateway.gateway = _shared_gateway.stack.enter_context(server)
    return _shared_gateway.gateway


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Chromium for this module only (see tests/browser/conftest.py: launched_chromium)."""
    with launched_chromium() as browser:
        yield browser


@pytest.fixture(scope="session")
def idp_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestIdp]]:
    """Two IdPs, one per organisation (distinct entity ids, keys and ports)."""
    root = tmp_path_factory.mktemp("idps")
    servers = {
        slug: TestIdp(name=slug, workdir=Path(root) / slug).start() for slug in ("acme", "globex")
    }
    yield servers
    for server in servers.values():
        server.stop()


def _reset_users(acme: TestIdp, globex: TestIdp) -> None:
    for idp in (acme, globex):
        idp.users.clear()
        idp.issued.clear()
        idp.logged_out.clear()
        idp.sign_response = idp.sign_assertion = True
    # ann's mapped groups come after an unmapped one: every value must be read, not the first.
    acme.add_user("ann", uid=UID_ANN, email="ann@acme.test", display_name="Ann Acme",
                  groups=["zz-not-mapped", "acme-staff", "acme-research"])  # fmt: skip
    acme.add_user("ben", email="ben@acme.test", display_name="Ben Acme",
                  groups=["acme-auditors", "acme-research-leads"])  # fmt: skip
    acme.add_user("oscar", email="oscar@acme.test", display_name="Oscar Outsider",
                  groups=["zz-not-mapped", "everyone"])  # fmt: skip
    globex.add_user("ann", uid=UID_ANN, email="ann@globex.test", display_name="Ann Globex",
                    groups=["globex-sales"])  # fmt: skip


@dataclass
class Tenant:
    org: Any  # auth.models.Organisation
    idp: TestIdp
    model: Any  # auth.sso.models.IdentityProvider

    @property
    def slug(self) -> str:
        return self.org.slug

    @property
    def sp_entity_id(self) -> str:
        from auth.sso.services import sp_entity_id

        return sp_entity_id(self.org)

    @property
    def acs_url(self) -> str:
        from auth.sso.services import sp_acs_url

        return sp_acs_url(self.org)

    def password(self, username: str) -> str:
        return self.idp.users[username].password


@dataclass
class SsoWorld:
    gateway: LiveGateway
    acme: Tenant
    globex: Tenant
    cast: Any

    def driver(self) -> SsoDriver:
        return SsoDriver(self.gateway.base_url)

    def sign_in(self, tenant: Tenant, username: str, **kwargs: Any) -> tuple[SsoDriver, Any]:
        driver = self.driver()
        result = driver.sign_in(tenant.slug, username, tenant.password(username), **kwargs)
        return driver, result


def configure_tenant(org: Any, idp: TestIdp, rules: list[tuple[str, str, str | None]], *,
                     allow_idp_initiated: bool = False, slo: bool = False) -> Any:  # fmt: skip
    """The SP side, through the SSO app's public services (as an admin would)."""
    from auth.models import Team
    from auth.sso.services import idp_create, mapping_rule_create

    model = idp_create(
        actor=None,
        organisation=org,
        entity_id=idp.entity_id,
        sso_url=idp.sso_url,
        x509cert=idp.keys.cert_pem.decode(),
        slo_url=idp.slo_url if slo else "",
        groups_attribute="groups",
        uid_attribute="uid",
        email_attribute="email",
        name_attribute="displayName",
        allow_idp_initiated=allow_idp_initiated,
    )
    for value, role, team_slug in rules:
        team = Team.objects.get(organisation=org, slug=team_slug) if team_slug else None
        mapping_rule_create(actor=None, idp=model, value=value, role=role, team=team)
    return model


@pytest.fixture
def sso(
    live_gateway: LiveGateway,
    cast: Any,
    settings: Any,
    idp_servers: dict[str, TestIdp],
) -> SsoWorld:
    """Both organisations configured for SSO against their own IdP, on a live gateway."""
    settings.AIGATEWAY_SAML_SP_BASE_URL = live_gateway.base_url
    acme_idp, globex_idp = idp_servers["acme"], idp_servers["globex"]
    _reset_users(acme_idp, globex_idp)
    acme = Tenant(cast.org, acme_idp, configure_tenant(cast.org, acme_idp, ACME_RULES))
    globex = Tenant(
        cast.other_org, globex_idp, configure_tenant(cast.other_org, globex_idp, GLOBEX_RULES)
    )
    # Each IdP learns its SP the way a real one does: from the SP's own metadata URL.
    from auth.sso.services import sp_metadata_url

    for tenant in (acme, globex):
        tenant.idp.trust_sp_metadata_url(sp_metadata_url(tenant.org), replace=True)
    return SsoWorld(live_gateway, acme, globex, cast)

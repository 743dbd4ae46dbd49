"""Shared by the web security tests: the site's URLs from the resolver (so a new page or form
is covered without touching the tests) and a world whose every shown field holds hostile text.

``hostile(tag)`` is markup that would run script if a page printed it unescaped: a script
element, and an attribute break-out into an image whose ``onerror`` runs. Each field gets its
own tag, so a test can tell which fields a page showed (escaped) and which leaked (raw).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils import timezone

# Not browser pages: the API doors (key auth, no cookies), probes, static files.
OUT_OF_SCOPE = re.compile(r"^(v1/|static/|metrics$|readyz$|healthz$)")
# Markers of markup that a browser would run: never in a page.
RAW = re.compile(r"<script>alert\(|<img src=x onerror", re.IGNORECASE)


def hostile(tag: str) -> str:
    return f'<script>alert("{tag}")</script>"><img src=x onerror=alert("{tag}")>'


def hostile_short(tag: str) -> str:
    """For a column too narrow for ``hostile`` (PostgreSQL refuses what does not fit)."""
    return f'<script>alert("{tag}")</script>'


def shown_escaped(tag: str, html: str) -> bool:
    """The page printed field ``tag`` as text: HTML-escaped (also inside a JSON dump shown in
    the page), or escaped inside json_script."""
    escaped = re.compile(
        rf"&lt;script&gt;alert\((\\?&quot;){tag}(\\?&quot;)\)"
        rf"|\\u003Cscript\\u003Ealert\(\\\"{tag}\\\"\)"
    )
    return bool(escaped.search(html))


# -- the URL walk ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SiteUrl:
    route: str  # e.g. "teams/<int:pk>/keys/"
    name: str  # namespaced, e.g. "web:team_key_issue" ("" when unnamed)
    callback: Any

    @property
    def methods(self) -> frozenset[str] | None:
        """The methods a require_http_methods-style decorator allows; None: not restricted."""
        function = self.callback
        while function is not None:
            function = getattr(function, "func", function)  # functools.partial
            code = getattr(function, "__code__", None)
            for name, cell in zip(
                getattr(code, "co_freevars", ()),
                getattr(function, "__closure__", None) or (),
                strict=False,
            ):
                if name == "request_method_list":
                    return frozenset(cell.cell_contents)
            function = getattr(function, "__wrapped__", None)
        return None

    @property
    def csrf_exempt(self) -> bool:
        return bool(getattr(self.callback, "csrf_exempt", False))


def _route_of(pattern: Any) -> str | None:
    """The route text of a path() pattern, or of a simple re_path() prefix such as allauth's
    ``^saml/(?P<organization_slug>[^/]+)/``; None for real regular expressions."""
    if isinstance(pattern, RoutePattern):
        return str(pattern._route)
    assert isinstance(pattern, RegexPattern)
    route = NAMED_GROUP.sub(lambda m: f"<{m.group(1)}>", str(pattern._regex))
    route = route.removeprefix("^").removesuffix("$")
    return None if re.search(r"[\\^$()\[\]*+?|]", route) else route


NAMED_GROUP = re.compile(r"\(\?P<(\w+)>\[\^/\]\+\)")  # one path segment: [^/]+


def site_urls(values: dict[str, dict[str, object]]) -> list[tuple[str, SiteUrl]]:
    """Every route of the site (API doors, probes and regex catch-alls left out), with its
    parameters filled from ``values`` (see ``fill``), once per distinct path, described by the
    view that actually answers it (an earlier route may shadow a library's)."""
    routes: list[SiteUrl] = []

    def walk(patterns: list[Any], prefix: str, namespace: str) -> None:
        for pattern in patterns:
            own = _route_of(pattern.pattern)
            if own is None:
                continue
            route = prefix + own
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                walk(pattern.url_patterns, route, inner)
            elif isinstance(pattern, URLPattern) and not OUT_OF_SCOPE.match(route):
                name = f"{namespace}:{pattern.name}" if namespace and pattern.name else ""
                routes.append(SiteUrl(route, name or (pattern.name or ""), pattern.callback))

    walk(get_resolver().url_patterns, "", "")
    found: dict[str, SiteUrl] = {}
    for url in routes:
        path = fill(url, values)
        if path in found:
            continue
        match = resolve(path)
        name = ":".join([*match.namespaces, match.url_name or ""]) if match.url_name else ""
        found[path] = SiteUrl(url.route, name or url.name, match.func)
    return list(found.items())


PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def fill(url: SiteUrl, values: dict[str, dict[str, object]]) -> str:
    """The route with its parameters filled: per-name values of ``values[url.name]``, else
    the world's defaults (``values[""]``), else 1."""
    own = {**values.get("", {}), **values.get(url.name, {})}

    def value(match: re.Match[str]) -> str:
        return str(own.get(match.group("name"), 1))

    return "/" + PARAM.sub(value, url.route)


# -- a world of hostile names ----------------------------------------------------------------
@dataclass
class HostileWorld:
    cast: Any
    tags: dict[str, str] = field(default_factory=dict)  # field → tag
    values: dict[str, dict[str, object]] = field(default_factory=dict)  # url name → kwargs


def build_hostile_world(cast: Any) -> HostileWorld:
    """Hostile text in every field a page shows back, stored as an attacker with some access
    could get it stored (through the services, or straight into the rows where a form would
    refuse it: escaping must not depend on validation)."""
    from aigateway.audit.services import audit_record
    from aigateway.guardrails.services import PolicyValues, policy_set
    from aigateway.quotas.models import QuotaAlert
    from aigateway.quotas.services import limit_set
    from aigateway.routing.models import BreakerEvent, Deployment, Route
    from aigateway.usage.models import UsageRecord
    from auth.models import OrgMembership, OrgRole
    from auth.services import api_key_create
    from auth.sso.services import idp_create, mapping_rule_create
    from providers.models import ModelPrice, Provider, ProviderKind
    from providers.services import credential_create
    from tests.sso_unit.saml_support import keypair

    world = HostileWorld(cast)
    tag = world.tags.setdefault

    cast.org.name = hostile(tag("organisation name", "on"))
    cast.org.save()
    cast.team.name = hostile(tag("team name", "tn"))
    cast.team.save()
    user = get_user_model().objects.create_user(
        hostile(tag("user name", "un"))[:150],
        email="x@example.test",
        password="pw-hostile-secret",
    )
    OrgMembership.objects.create(user=user, organisation=cast.org, role=OrgRole.MEMBER)
    cast.team.memberships.create(user=user, role="member")

    provider = Provider.objects.create(
        name=hostile_short(tag("provider name", "pn")), kind=ProviderKind.DEMO
    )
    credential = credential_create(
        provider=provider,
        name=hostile(tag("credential name", "cn")),
        secret="sk-hostile-world-0123456789",
    )
    price = ModelPrice.objects.create(
        provider=provider,
        model=hostile(tag("price model", "pm")),
        input_per_million=Decimal(1),
        output_per_million=Decimal(2),
    )
    route = Route.objects.create(
        name=hostile(tag("route name", "rn")), description=hostile(tag("route description", "rd"))
    )
    deployment = Deployment.objects.create(
        route=route,
        provider=provider,
        upstream_model=hostile(tag("upstream model", "um")),
        last_probe_ok=False,
        last_probe_at=timezone.now(),
        last_probe_error=hostile(tag("probe error", "pe"))[:100],
    )
    BreakerEvent.objects.create(
        deployment=deployment,
        created_at=timezone.now(),
        from_state="closed",
        to_state="open",
        reason=hostile(tag("breaker reason", "br")),
    )
    cast.team.allowed_routes.add(route)
    key = api_key_create(team=cast.team, name=hostile(tag("key name", "kn")))
    limit = limit_set(actor=None, scope="team", scope_id=cast.team.pk, kind="rpm", value=10)
    alert = QuotaAlert.objects.create(limit=limit, period="2026-11-26", used=Decimal(9))
    policy = policy_set(
        actor=None,
        scope="team",
        organisation=cast.org,
        team=cast.team,
        values=PolicyValues(
            rules=[
                {
                    "detect": "custom.hostile",
                    "action": "flag",
                    "words": [hostile(tag("guardrail words", "gw"))],
                }
            ]
        ),
    )
    idp = idp_create(
        actor=None,
        organisation=cast.org,
        entity_id="https://idp.hostile.test/",
        sso_url="https://idp.hostile.test/sso",
        x509cert=keypair().cert_pem.decode(),
    )
    idp.name = hostile(tag("identity provider name", "in"))
    idp.save(update_fields=["name"])
    rule = mapping_rule_create(
        actor=None,
        idp=idp,
        value=hostile(tag("mapping value", "mv")),
        role="member",
        team=cast.team,
    )
    event = audit_record(
        action="team.updated",
        target_type="team",
        target_id=cast.team.pk,
        target_label=hostile(tag("audit target", "at")),
        actor_label=hostile(tag("audit actor", "aa")),
        details={"note": hostile(tag("audit details", "ad"))},
        organisation_id=cast.org.pk,
    )
    UsageRecord.objects.create(
        request_id="req_hostile_1",
        created_at=timezone.now(),
        organisation_id=cast.org.pk,
        team_id=cast.team.pk,
        route=hostile(tag("usage route", "ur")),
        provider=hostile(tag("usage provider", "up")),
        upstream_model=hostile(tag("usage model", "ul")),
        status_code=200,
        input_tokens=3,
        output_tokens=4,
        cost_usd=Decimal("0.01"),
        latency_ms=12.0,
    )

    world.values = {
        "": {"pk": cast.team.pk, "org_slug": cast.org.slug, "organization_slug": cast.org.slug},
        "web:team_member_role": {"user_id": user.pk},
        "web:team_member_remove": {"user_id": user.pk},
        "web:team_key_revoke": {"key_id": key.api_key.pk},
        "web:breaker_action": {"pk": deployment.pk, "action": "open"},
        "web:audit_detail": {"pk": event.pk},
        "web:guardrail_edit": {"pk": policy.pk},
        "web:guardrail_delete": {"pk": policy.pk},
        "web:limit_edit": {"pk": limit.pk},
        "web:limit_delete": {"pk": limit.pk},
        "web:alert_acknowledge": {"pk": alert.pk},
        "web:provider": {"pk": provider.pk},
        "web:provider_test": {"pk": provider.pk},
        "web:credential_add": {"pk": provider.pk},
        "web:credential_rotate": {"pk": provider.pk},
        "web:credential_activate": {"pk": credential.pk},
        "web:credential_retire": {"pk": credential.pk},
        "web:price_set": {"pk": provider.pk},
        "web:price_delete": {"pk": price.pk},
        "web:route": {"pk": route.pk},
        "web:route_remove": {"pk": route.pk},
        "web:deployment_add": {"pk": route.pk},
        "web:deployment_edit": {"pk": deployment.pk},
        "web:deployment_remove": {"pk": deployment.pk},
        "sso:idp_detail": {"pk": idp.pk},
        "sso:idp_delete": {"pk": idp.pk},
        "sso:rule_add": {"pk": idp.pk},
        "sso:rule_preview": {"pk": idp.pk},
        "sso:rule_delete": {"pk": idp.pk, "rule_pk": rule.pk},
    }
    return world

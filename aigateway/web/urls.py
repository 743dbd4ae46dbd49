from django.urls import path

from aigateway.web import (
    audit_views,
    breakers_views,
    cache_views,
    guardrails_views,
    limits_views,
    overview_views,
    providers_views,
    routes_views,
    teams_views,
    usage_views,
    views,
)
from auth.sso.login_views import GatewayLoginView
from auth.sso.sp_views import logout_view as sso_logout_view

app_name = "web"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    # Sign-in with SSO links, break-glass TOTP and per-organisation password policy; sign-out
    # with SAML SLO where the IdP has one (auth/sso/login_views.py, auth/sso/sp_views.py).
    path("login/", GatewayLoginView.as_view(), name="login"),
    path("logout/", sso_logout_view, name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("breakers/", breakers_views.breakers_page, name="breakers"),
    path("breakers/fragment/", breakers_views.breakers_fragment, name="breakers_fragment"),
    path(
        "breakers/<int:pk>/<str:action>/",
        breakers_views.breaker_action,
        name="breaker_action",
    ),
    path("audit/", audit_views.audit_page, name="audit"),
    path("audit/rows/", audit_views.audit_rows_fragment, name="audit_rows"),
    path("audit/<int:pk>/", audit_views.audit_detail, name="audit_detail"),
    path("audit/export.csv", audit_views.audit_export, name="audit_export"),
    # Overview fragments (overview_views.py), Teams & keys (teams_views.py), Usage
    # (usage_views.py).
    path("overview/metrics/", overview_views.overview_metrics, name="overview_metrics"),
    path("overview/todo/", overview_views.overview_todo, name="overview_todo"),
    path("teams/", teams_views.teams_page, name="teams"),
    path("teams/<int:pk>/", teams_views.team_page, name="team_detail"),
    path("teams/<int:pk>/limits/", teams_views.team_limits_fragment, name="team_limits"),
    path("teams/<int:pk>/edit/", teams_views.team_edit, name="team_edit"),
    path("teams/<int:pk>/delete/", teams_views.team_delete_view, name="team_delete"),
    path("teams/<int:pk>/members/", teams_views.member_add_view, name="team_member_add"),
    path(
        "teams/<int:pk>/members/<int:user_id>/role/",
        teams_views.member_role_view,
        name="team_member_role",
    ),
    path(
        "teams/<int:pk>/members/<int:user_id>/remove/",
        teams_views.member_remove_view,
        name="team_member_remove",
    ),
    path("teams/<int:pk>/keys/", teams_views.key_issue_view, name="team_key_issue"),
    path(
        "teams/<int:pk>/keys/<int:key_id>/revoke/",
        teams_views.key_revoke_view,
        name="team_key_revoke",
    ),
    path("usage/", usage_views.usage_page, name="usage"),
    path("usage/results/", usage_views.usage_results_fragment, name="usage_results"),
    path("usage/calls/", usage_views.usage_calls_fragment, name="usage_calls"),
    path("usage/export.csv", usage_views.usage_export, name="usage_export"),
    path("cache/", cache_views.cache_page, name="cache"),
    path("cache/teams/<int:pk>/purge/", cache_views.cache_purge_view, name="cache_purge"),
    path("guardrails/", guardrails_views.guardrails_page, name="guardrails"),
    path("guardrails/try/", guardrails_views.guardrail_try, name="guardrail_try"),
    path("guardrails/<int:pk>/edit/", guardrails_views.guardrail_edit, name="guardrail_edit"),
    path("guardrails/<int:pk>/delete/", guardrails_views.guardrail_delete, name="guardrail_delete"),
    path("limits/", limits_views.limits_page, name="limits"),
    path("limits/usage/", limits_views.limits_usage, name="limits_usage"),
    path("limits/<int:pk>/edit/", limits_views.limit_edit, name="limit_edit"),
    path("limits/<int:pk>/delete/", limits_views.limit_delete_view, name="limit_delete"),
    path(
        "limits/alerts/<int:pk>/acknowledge/",
        limits_views.alert_acknowledge_view,
        name="alert_acknowledge",
    ),
    # Providers and credentials (providers_views.py), routes and deployments (routes_views.py)
    path("providers/", providers_views.providers_page, name="providers"),
    path("providers/<int:pk>/", providers_views.provider_page, name="provider"),
    path("providers/<int:pk>/test/", providers_views.provider_test, name="provider_test"),
    path("providers/<int:pk>/credentials/", providers_views.credential_add, name="credential_add"),
    path(
        "providers/<int:pk>/rotate/",
        providers_views.credential_rotate_view,
        name="credential_rotate",
    ),
    path(
        "providers/credentials/<int:pk>/activate/",
        providers_views.credential_activate_view,
        name="credential_activate",
    ),
    path(
        "providers/credentials/<int:pk>/retire/",
        providers_views.credential_retire_view,
        name="credential_retire",
    ),
    path("providers/<int:pk>/prices/", providers_views.price_set_view, name="price_set"),
    path(
        "providers/prices/<int:pk>/delete/",
        providers_views.price_delete_view,
        name="price_delete",
    ),
    path("routes/", routes_views.routes_page, name="routes"),
    path("routes/health/", routes_views.routes_health, name="routes_health"),
    path("routes/<int:pk>/", routes_views.route_page, name="route"),
    path("routes/<int:pk>/delete/", routes_views.route_remove, name="route_delete"),
    path("routes/<int:pk>/deployments/", routes_views.deployment_add, name="deployment_add"),
    path(
        "routes/deployments/<int:pk>/edit/",
        routes_views.deployment_edit,
        name="deployment_edit",
    ),
    path(
        "routes/deployments/<int:pk>/remove/",
        routes_views.deployment_remove,
        name="deployment_remove",
    ),
]

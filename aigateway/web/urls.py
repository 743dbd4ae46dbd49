from django.contrib.auth import views as auth_views
from django.urls import path

from aigateway.web import (
    audit_views,
    breakers_views,
    cache_views,
    guardrails_views,
    limits_views,
    views,
)

app_name = "web"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
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
]

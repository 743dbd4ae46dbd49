"""/sso/: the SSO admin pages (platform admins change, auditors read)."""

from __future__ import annotations

from django.urls import path

from auth.sso import views

app_name = "sso"
urlpatterns = [
    path("", views.sso_list, name="list"),
    path("new/<slug:org_slug>/", views.idp_new, name="idp_new"),
    path("orgs/<slug:org_slug>/local-login/", views.local_login_set, name="local_login"),
    path("<int:pk>/", views.idp_detail, name="idp_detail"),
    path("<int:pk>/delete/", views.idp_delete, name="idp_delete"),
    path("<int:pk>/rules/", views.rule_add, name="rule_add"),
    path("<int:pk>/rules/<int:rule_pk>/delete/", views.rule_delete, name="rule_delete"),
    path("<int:pk>/preview/", views.rule_preview, name="rule_preview"),
]

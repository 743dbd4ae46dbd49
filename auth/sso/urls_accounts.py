"""/accounts/: the SAML SP endpoints (ours first, allauth's for the rest) and the few allauth
names its flows reverse. allauth's own account pages (local signup, password reset, e-mail
management) are deliberately not mounted: local accounts are made by admins."""

from __future__ import annotations

from allauth.socialaccount import views as socialaccount_views
from django.urls import include, path
from django.views.generic import RedirectView

from auth.sso import sp_views

saml = "saml/<str:organization_slug>/"
urlpatterns = [
    path(f"{saml}acs/finish/", sp_views.finish_acs, name="sso_finish_acs"),
    path(f"{saml}login/", sp_views.login, name="sso_login"),
    path(f"{saml}metadata/", sp_views.metadata, name="sso_metadata"),
    path(f"{saml}sls/", sp_views.sls, name="sso_sls"),
    path("", include("allauth.socialaccount.providers.saml.urls")),
    path("logout/", sp_views.logout_view, name="sso_logout"),
    path(
        "3rdparty/login/cancelled/",
        socialaccount_views.login_cancelled,
        name="socialaccount_login_cancelled",
    ),
    path(
        "3rdparty/login/error/", socialaccount_views.login_error, name="socialaccount_login_error"
    ),
    # Names allauth reverses in some flows; ours answer them.
    path("login/", RedirectView.as_view(pattern_name="web:login"), name="account_login"),
    path(
        "3rdparty/",
        RedirectView.as_view(pattern_name="web:dashboard"),
        name="socialaccount_connections",
    ),
]

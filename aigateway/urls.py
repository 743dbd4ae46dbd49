from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("v1/", include("aigateway.api.urls")),
    # Management API, OpenAPI document (/api/schema) and docs page (/api/docs).
    path("api/", include("aigateway.api.management.urls")),
    path("admin/", admin.site.urls),
    path("playground/", include("aigateway.playground.urls")),
    # Single sign-on: the SAML SP endpoints (/accounts/saml/<org>/...) and the SSO admin pages.
    path("accounts/", include("auth.sso.urls_accounts")),
    path("sso/", include("auth.sso.urls")),
    path("", include("aigateway.observability.urls")),
    path("", include("aigateway.web.urls")),
]

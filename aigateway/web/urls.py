from django.contrib.auth import views as auth_views
from django.urls import path

from aigateway.web import breakers_views, views

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
]

from django.urls import path, re_path

from aigateway.api import views

app_name = "api"
# django-stubs types view callables as sync; these async views are fine under ASGI.
urlpatterns = [
    path("chat/completions", views.chat_completions, name="chat-completions"),  # type: ignore[arg-type]
    path("models", views.list_models, name="models"),  # type: ignore[arg-type]
    re_path(r"^(?P<path>.*)$", views.not_found),
]

from django.urls import path, re_path

from aigateway.api import views

app_name = "api"
urlpatterns = [
    path("chat/completions", views.chat_completions, name="chat-completions"),
    path("models", views.list_models, name="models"),
    re_path(r"^(?P<path>.*)$", views.not_found),
]

from django.urls import include, path, re_path

from aigateway.api import anthropic_views, views

app_name = "api"
# django-stubs types view callables as sync; these async views are fine under ASGI.
urlpatterns = [
    path("chat/completions", views.chat_completions, name="chat-completions"),  # type: ignore[arg-type]
    path("embeddings", views.embeddings, name="embeddings"),  # type: ignore[arg-type]
    path("models", views.list_models, name="models"),  # type: ignore[arg-type]
    # Route names may contain "/" (the SDK percent-encodes it; Django decodes it back).
    # [\s\S], not ".": a decoded %0A in the name must reach the door, not Django's HTML 404
    # (an inline (?s) flag would make the patterns non-reversible).
    re_path(r"^models/(?P<model>[\s\S]+)$", views.retrieve_model, name="model"),  # type: ignore[arg-type]
    # Anthropic-compatible door (aigateway/api/anthropic_views.py), same pipeline.
    path("messages", anthropic_views.messages, name="messages"),  # type: ignore[arg-type]
    path("messages/count_tokens", anthropic_views.count_tokens, name="messages-count-tokens"),  # type: ignore[arg-type]
    # Files and Batch API (aigateway/batches/), executed by Celery workers.
    path("", include("aigateway.batches.urls")),
    re_path(r"^(?P<path>[\s\S]*)$", views.not_found),  # type: ignore[arg-type]
]

from django.urls import path

from aigateway.batches import views

app_name = "batches"
# django-stubs types view callables as sync; these async views are fine under ASGI.
urlpatterns = [
    path("files", views.files, name="files"),  # type: ignore[arg-type]
    path("files/<str:file_id>", views.file_detail, name="file"),  # type: ignore[arg-type]
    path("files/<str:file_id>/content", views.file_content, name="file-content"),  # type: ignore[arg-type]
    path("batches", views.batches, name="batches"),  # type: ignore[arg-type]
    path("batches/<str:batch_id>", views.batch_detail, name="batch"),  # type: ignore[arg-type]
    path("batches/<str:batch_id>/cancel", views.batch_cancel, name="batch-cancel"),  # type: ignore[arg-type]
]

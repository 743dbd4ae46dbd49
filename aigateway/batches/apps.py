from django.apps import AppConfig


class BatchesConfig(AppConfig):
    """OpenAI-compatible Files and Batch API: uploaded JSONL, executed by Celery workers."""

    name = "aigateway.batches"
    label = "batches"
    verbose_name = "Batches"
    default_auto_field = "django.db.models.BigAutoField"

from django.urls import path

from aigateway.observability.health import readyz
from aigateway.observability.metrics import metrics

app_name = "observability"
urlpatterns = [
    path("metrics", metrics, name="metrics"),
    path("readyz", readyz, name="readyz"),
]

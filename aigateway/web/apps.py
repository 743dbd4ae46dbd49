from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "aigateway.web"
    label = "web"
    verbose_name = "Dashboard"

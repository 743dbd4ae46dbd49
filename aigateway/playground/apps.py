from django.apps import AppConfig


class PlaygroundConfig(AppConfig):
    name = "aigateway.playground"
    label = "playground"
    verbose_name = "Playground"

from django.urls import path

from aigateway.playground import views

app_name = "playground"
urlpatterns = [
    path("", views.playground_page, name="page"),
    path("stream/", views.playground_stream, name="stream"),
    path("history/", views.history_page, name="history"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
]

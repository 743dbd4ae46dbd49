"""A user's own playground runs: what was sent (as the pipeline stored it: guardrail
placeholders, never the redacted values), the answer, and the call's facts."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PlaygroundRun(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="playground_runs"
    )
    team = models.ForeignKey(
        "identity.Team", on_delete=models.CASCADE, related_name="playground_runs"
    )
    route = models.CharField(max_length=200)
    # [{"role": "system" | "user" | "assistant", "content": "..."}], system prompt first.
    messages = models.JSONField(default=list)
    # {"temperature": 0.7, "max_tokens": 512}
    params = models.JSONField(default=dict)
    answer = models.TextField(blank=True)
    # The facts shown with the answer (provider, deployment, failovers, latency, tokens,
    # cost, cache, status); metadata only, so team admins may see it when the team allows.
    meta = models.JSONField(default=dict)
    # The messages' and the answer's text in one field, for the owner's search.
    search_text = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-created_at"], name="playground__user_id_0f1c2a_idx"),
            models.Index(fields=["team", "-created_at"], name="playground__team_id_6b7d3e_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.route} run {self.request_id}"

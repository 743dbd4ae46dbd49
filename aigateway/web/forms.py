"""The base of every dashboard form: no label suffix, and a service's ValidationError shown
beside the field it names (or above the form)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError


class DashboardForm(forms.Form):
    # Service field name → form field name, where they differ.
    service_fields: dict[str, str] = {}
    # Several forms share a page and field names: a form may give its own ids (labels stay
    # unique), e.g. "rotate_%s".
    ids = "id_%s"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        kwargs.setdefault("auto_id", self.ids)
        super().__init__(*args, **kwargs)

    def add_service_errors(self, error: ValidationError) -> None:
        """Show a service's refusal: per field when it names fields we have, else above."""
        if not hasattr(error, "error_dict"):
            for sentence in error.messages:
                self.add_error(None, sentence)
            return
        for name, sentences in error.message_dict.items():
            field = self.service_fields.get(name, name)
            for sentence in sentences:
                self.add_error(field if field in self.fields else None, sentence)

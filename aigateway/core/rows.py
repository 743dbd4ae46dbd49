"""Make untrusted values fit a model's text columns before a buffered bulk write.

Request data (a model name, an error type) reaches usage and audit rows. PostgreSQL refuses
NUL characters in text and values longer than a column; one such row would fail its whole
batch. Values are cleaned where they enter the buffer, so every row the buffer holds can be
written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from django.db import models


@cache
def _text_limits(model: type[models.Model]) -> dict[str, int | None]:
    return {
        field.attname: getattr(field, "max_length", None)
        for field in model._meta.concrete_fields
        if isinstance(field, (models.CharField, models.TextField))
    }


def fit_text(model: type[models.Model], values: dict[str, Any]) -> dict[str, Any]:
    """Strip NUL characters and truncate strings to the column's max_length, in place."""
    for name, limit in _text_limits(model).items():
        value = values.get(name)
        if isinstance(value, str):
            if "\x00" in value:
                value = value.replace("\x00", "")
            if limit is not None and len(value) > limit:
                value = value[:limit]
            values[name] = value
    return values


def fit_text_row(
    model: type[models.Model], attnames: Sequence[str]
) -> Callable[[list[Any]], list[Any]]:
    """``fit_text`` for rows given as lists in ``attnames`` order (the bulk inserter's rows):
    the text columns' positions and limits are looked up once."""
    limits = _text_limits(model)
    text_columns = [(i, limits[name]) for i, name in enumerate(attnames) if name in limits]

    def fit(row: list[Any]) -> list[Any]:
        for i, limit in text_columns:
            value = row[i]
            if isinstance(value, str):
                if "\x00" in value:
                    value = row[i] = value.replace("\x00", "")
                if limit is not None and len(value) > limit:
                    row[i] = value[:limit]
        return row

    return fit


def is_row_id(text: str) -> bool:
    """A primary key as a query parameter gives it: ASCII digits, at most 18 of them.
    (``str.isdigit`` alone also accepts "²" and "٣", which ``int`` then refuses or reads.)"""
    return 0 < len(text) <= 18 and text.isascii() and text.isdigit()

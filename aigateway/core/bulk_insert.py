"""Many rows of one model in one ``executemany``, for the write-behind buffers (usage, audit).

The ORM's ``bulk_create`` builds a model instance per row and compiles every value through
the field's full ``get_db_prep_save`` chain: ~100 µs per row, measured as a third of a web
worker's CPU under load (docs/benchmarks.md). Here each column's adapter is chosen once per
database vendor and a row is a plain tuple, so a row costs a few microseconds.

Only the column types the buffers write are supported (text, integers, booleans, floats,
decimals, datetimes, JSON given as already-serialised text); anything else is refused when
the inserter is built, not discovered on a row. Values must already fit their columns
(``aigateway.core.rows.fit_text``): a row the database refuses fails its whole batch, and the
buffer then writes the batch one row at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connections, models
from django.db.models.constants import OnConflict

_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,  # and its Big/Small/Positive subclasses
    models.BooleanField,
    models.FloatField,
    models.ForeignKey,
)


class BulkInserter:
    """``INSERT INTO <table> (<columns>) VALUES (...)`` for ``attnames``, in that order.

    Columns left out get no model default: give every column that has no database default.
    JSON columns take text (``orjson.dumps(value).decode()``), which is what the database
    parses back; ``ignore_conflicts`` skips rows that violate a unique constraint (a usage
    record written twice after a retried flush)."""

    def __init__(
        self, model: type[models.Model], attnames: Sequence[str], *, ignore_conflicts: bool = False
    ) -> None:
        fields = {f.attname: f for f in model._meta.concrete_fields}
        unknown = [name for name in attnames if name not in fields]
        if unknown:
            raise ValueError(f"{model.__name__} has no columns {unknown}")
        self.model = model
        self.fields = [fields[name] for name in attnames]
        for field in self.fields:
            if not isinstance(field, (*_PLAIN, models.DecimalField, models.DateTimeField,
                                      models.JSONField)):  # fmt: skip
                raise TypeError(f"{model.__name__}.{field.attname}: unsupported column type")
        self.ignore_conflicts = ignore_conflicts
        self._prepared: dict[str, tuple[str, list[Callable[[Any], Any] | None]]] = {}

    def insert(self, rows: Iterable[Sequence[Any]], using: str = "default") -> None:
        """Insert ``rows`` (tuples in ``attnames`` order) with the connection's cursor; the
        caller owns the transaction."""
        connection = connections[using]
        sql, adapters = self._prepare(using)
        if any(adapters):
            params = [
                tuple(
                    value if adapt is None or value is None else adapt(value)
                    for adapt, value in zip(adapters, row, strict=True)
                )
                for row in rows
            ]
        else:
            params = [tuple(row) for row in rows]
        if params:
            with connection.cursor() as cursor:
                cursor.executemany(sql, params)

    def _prepare(self, using: str) -> tuple[str, list[Callable[[Any], Any] | None]]:
        if using not in self._prepared:
            self._prepared[using] = self._build(using)
        return self._prepared[using]

    def _build(self, using: str) -> tuple[str, list[Callable[[Any], Any] | None]]:
        connection = connections[using]
        ops = connection.ops
        on_conflict = OnConflict.IGNORE if self.ignore_conflicts else None
        placeholders: list[str] = []
        adapters: list[Callable[[Any], Any] | None] = []
        for field in self.fields:
            placeholder = "%s"
            adapter: Callable[[Any], Any] | None = None
            if isinstance(field, models.JSONField):
                if connection.vendor == "postgresql":
                    placeholder = "CAST(%s AS jsonb)"
            elif isinstance(field, models.DateTimeField):
                adapter = ops.adapt_datetimefield_value
            elif isinstance(field, models.DecimalField):
                adapter = _decimal_adapter(ops, field)
            placeholders.append(placeholder)
            adapters.append(adapter)
        columns = ", ".join(ops.quote_name(str(f.column)) for f in self.fields)
        suffix = ops.on_conflict_suffix_sql(self.fields, on_conflict, None, None)
        sql = (
            f"{ops.insert_statement(on_conflict=on_conflict)} "
            f"{ops.quote_name(self.model._meta.db_table)} ({columns}) "
            f"VALUES ({', '.join(placeholders)}) {suffix}"
        ).rstrip()
        return sql, adapters


def _decimal_adapter(ops: Any, field: models.DecimalField) -> Callable[[Any], Any]:
    def adapt(value: Any) -> Any:
        return ops.adapt_decimalfield_value(value, field.max_digits, field.decimal_places)

    return adapt

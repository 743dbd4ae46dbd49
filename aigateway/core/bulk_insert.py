"""Many rows of one model in few statements, for the write-behind buffers (usage, audit).

The ORM's ``bulk_create`` builds a model instance per row and compiles every value through
the field's full ``get_db_prep_save`` chain: ~100 µs per row, measured as a third of a web
worker's CPU under load (docs/benchmarks.md). Here each column's adapter is chosen once per
database vendor and a row is a plain tuple, so a row costs a few microseconds.

On SQLite a batch goes in multi-row ``INSERT ... VALUES (...), (...)`` statements of at most
``MAX_ROWS_PER_STATEMENT`` rows, not an ``executemany`` (one driver step per row). SQLite's
driver releases and retakes the GIL around every step; in a worker whose event loop keeps
the GIL busy each retake waits up to the 5 ms switch interval, so under S1 load a 500-row
batch held SQLite's single write lock for 100-600 ms, and the four flushing threads of two
workers (usage, audit) fell behind the calls. Statement sizes are powers of two, so only a
handful of statement texts exist: the driver keeps each compiled text in its statement
cache (128 entries), and with one text per batch size each worker's RSS grew ~170 MiB in
70 s of S1 load.
On PostgreSQL it is one ``executemany``: psycopg pipelines it in one round trip.

Only the column types the buffers write are supported (text, integers, booleans, floats,
decimals, datetimes, JSON given as already-serialised text); anything else is refused when
the inserter is built, not discovered on a row. Values must already fit their columns
(``aigateway.core.rows.fit_text``): a row the database refuses fails its whole batch, and the
buffer then writes the batch one row at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connections, models
from django.db.models.constants import OnConflict

# Rows per statement at most (SQLite; a power of two at or under this, and within the
# connection's parameter limit, 32,766 by default, as low as 999 on some builds).
MAX_ROWS_PER_STATEMENT = 256

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
        self._prepared: dict[str, _Prepared] = {}

    def insert(self, rows: Iterable[Sequence[Any]], using: str = "default") -> None:
        """Insert ``rows`` (tuples in ``attnames`` order) with the connection's cursor; the
        caller owns the transaction. A row of the wrong width is refused before anything is
        sent."""
        prepared = self._prepare(using)
        width, adapters = len(self.fields), prepared.adapters
        params: list[tuple[Any, ...]] = []
        for row in rows:
            if len(row) != width:
                raise ValueError(f"every row needs {width} values, not {len(row)}")
            params.append(
                tuple(
                    value if adapt is None or value is None else adapt(value)
                    for adapt, value in zip(adapters, row, strict=True)
                )
            )
        if not params:
            return
        with connections[using].cursor() as cursor:
            if not prepared.multi_row:
                cursor.executemany(self._sql(prepared, 1), params)
                return
            start = 0
            for size in self._statement_sizes(prepared, len(params)):
                chunk = [value for row in params[start : start + size] for value in row]
                cursor.execute(self._sql(prepared, size), chunk)
                start += size

    def _prepare(self, using: str) -> _Prepared:
        if using not in self._prepared:
            self._prepared[using] = self._build(using)
        return self._prepared[using]

    @staticmethod
    def _statement_sizes(prepared: _Prepared, rows: int) -> list[int]:
        """``rows`` split into full statements and then powers of two (500 = 256 + 128 + 64 +
        32 + 16 + 4). One text per row count instead grew each worker's RSS by ~170 MiB in
        the first minute of S1 load (docs/benchmarks.md)."""
        largest = prepared.rows_per_statement
        sizes = [largest] * (rows // largest)
        rest = rows % largest
        while rest:
            size = 1 << (rest.bit_length() - 1)
            sizes.append(size)
            rest -= size
        return sizes

    @staticmethod
    def _sql(prepared: _Prepared, rows: int) -> str:
        sql = prepared.statements.get(rows)
        if sql is None:
            values = ", ".join([prepared.row_placeholder] * rows)
            sql = f"{prepared.head} VALUES {values} {prepared.suffix}".rstrip()
            prepared.statements[rows] = sql
        return sql

    def _build(self, using: str) -> _Prepared:
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
        head = (
            f"{ops.insert_statement(on_conflict=on_conflict)} "
            f"{ops.quote_name(self.model._meta.db_table)} ({columns})"
        )
        max_params = connection.features.max_query_params or 65_535
        fitting = max(1, min(MAX_ROWS_PER_STATEMENT, max_params // len(self.fields)))
        return _Prepared(
            head=head,
            row_placeholder=f"({', '.join(placeholders)})",
            suffix=ops.on_conflict_suffix_sql(self.fields, on_conflict, None, None),
            adapters=adapters,
            rows_per_statement=1 << (fitting.bit_length() - 1),  # a power of two
            # SQLite only (see the module docstring): psycopg's executemany is pipelined
            # (one round trip) and a multi-row statement was slower on PostgreSQL, 72-144
            # -> 120-156 µs per audit entry (bench.audit_cost).
            multi_row=connection.vendor == "sqlite",
        )


@dataclasses.dataclass(slots=True)
class _Prepared:
    head: str
    row_placeholder: str
    suffix: str
    adapters: list[Callable[[Any], Any] | None]
    rows_per_statement: int
    multi_row: bool
    statements: dict[int, str] = dataclasses.field(default_factory=dict)


def _decimal_adapter(ops: Any, field: models.DecimalField) -> Callable[[Any], Any]:
    def adapt(value: Any) -> Any:
        return ops.adapt_decimalfield_value(value, field.max_digits, field.decimal_places)

    return adapt

"""Streamed CSV downloads of dashboard tables (usage calls, audit events).

Two things matter here:

- Cells are data, never formulas. A spreadsheet runs a cell that starts with ``=``, ``+``,
  ``-`` or ``@`` (and, in some, a tab or carriage return) as a formula, and a prompt, a
  route name or an actor label is text anyone may have chosen. Such text cells get a leading
  apostrophe (OWASP's advice); numbers the gateway computed are written as they are.
- Rows are read in keyset batches and written as they come, so a million rows cost one
  batch of memory. Under ASGI, Django serves a *synchronous* streaming iterator by reading
  it whole into memory first; so there the batches are produced by an asynchronous iterator
  that runs each database read in the request's sync thread.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | Decimal | datetime | None


def csv_cell(value: Cell) -> str | int | float | Decimal:
    """One cell, safe to open in a spreadsheet."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_chunks(header: Sequence[str], batches: Iterable[Sequence[Sequence[Cell]]]) -> Iterator[str]:
    """The header, then one chunk of CSV text per batch of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for batch in batches:
        writer.writerows([csv_cell(c) for c in row] for row in batch)
        yield _drain(buffer)
    rest = _drain(buffer)
    if rest:
        yield rest


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


async def _asynchronous(chunks: Iterator[str]) -> AsyncIterator[str]:
    # Each batch reads the database: do it in the request's thread, one batch at a time.
    take = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)
    while (chunk := await take()) is not None:
        yield chunk


def csv_response(
    request: HttpRequest,
    *,
    filename: str,
    header: Sequence[str],
    batches: Callable[[], Iterable[Sequence[Sequence[Cell]]]],
) -> StreamingHttpResponse:
    """A streamed ``text/csv`` attachment: ``batches()`` yields lists of rows, lazily."""
    chunks = csv_chunks(header, batches())
    content = _asynchronous(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response

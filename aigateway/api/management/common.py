"""Input types shared by the management endpoints.

Every id is bounded to what a database key can hold and every string refuses NUL, so a
fuzzer's extremes are a 400 naming the field, not a database error (PostgreSQL rejects NUL
in text; an id past 2**63 overflows SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from ninja import Path
from pydantic import Field, StringConstraints

from aigateway.api.management.errors import ApiError

MAX_ID = 2**63 - 1
NO_NUL = r"^[^\x00]*$"

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


# Strings without NUL, by length (min, max).
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
RouteName = Name
Username = Annotated[str, StringConstraints(min_length=1, max_length=150, pattern=NO_NUL)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=NO_NUL)]
Text20 = Annotated[str, StringConstraints(max_length=20, pattern=NO_NUL)]
Text100 = Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)]
Text200 = Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[-a-zA-Z0-9_]+$")]


def aware_utc(value: datetime | None, param: str) -> datetime | None:
    """A datetime in UTC (naive ones are taken as UTC); 400 for one that cannot be."""
    if value is None:
        return None
    try:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ApiError(400, f"'{param}' is out of range.", param=param) from None

"""Helpers for the audit tests that start other processes against the test database."""

from __future__ import annotations

import io

from django.core.management import call_command
from django.db import connection


def database_url() -> str:
    """The test database as a DATABASE_URL, for a subprocess (transactional_db tests)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def audit_verify() -> str:
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    return out.getvalue().strip()

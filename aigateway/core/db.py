"""Running ORM code from the async hot path."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import Error, close_old_connections, connection


async def run_db[**P, R](fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn`` in a worker thread (not the single sync thread: lookups may run in
    parallel), then let Django close the thread's connection if it outlived CONN_MAX_AGE or
    broke, exactly as it does at the end of a request."""

    def call() -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(call, thread_sensitive=False)()


def database_up() -> bool:
    """Does the database answer? Any database failure means no (an InterfaceError, a
    connection closed under us, is not a DatabaseError); the broken connection is let go."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Error:
        close_old_connections()
        return False

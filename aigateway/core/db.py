"""Running ORM code from the async hot path."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import Error, close_old_connections, connection, reset_queries


async def run_db[**P, R](fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn`` in a worker thread (not the single sync thread: lookups may run in
    parallel), treating the call as Django treats a request: the thread's query log is
    cleared first (it is kept with DEBUG on and otherwise cleared only when a request starts
    on the thread, which never happens on these: a flush thread kept up to 9,000
    interpolated multi-row INSERTs of up to ~40 kB each), and afterwards its connection is
    closed if it outlived CONN_MAX_AGE or broke."""

    def call() -> R:
        reset_queries()
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

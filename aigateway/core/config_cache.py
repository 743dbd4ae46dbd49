"""In-process cache of configuration (keys, routes, providers) for the hot path.

The API must not query the database per request. Lookups are cached in process and dropped
when the shared *config version* changes. Every write to a cached model bumps the version
(signals); each process compares its version with the shared one at most once per
``AIGATEWAY_CONFIG_CACHE_SECONDS``, so a revoked key stops working everywhere within that time.
The shared version lives in Redis when configured, else in process (single-process mode).
After a process's first check, a background refresher (aigateway/core/loop_refresher.py)
does the checking, so no request waits for that Redis round trip.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, transaction

from aigateway.core.db import run_db
from aigateway.core.loop_refresher import GRACE_INTERVALS, LoopRefresher
from aigateway.core.redis import get_async_redis, get_sync_redis

T = TypeVar("T")


class ConfigUnavailable(Exception):
    """The database failed and no earlier copy of this config entry exists."""


logger = logging.getLogger(__name__)
VERSION_KEY = "aigw:config-version"


class ConfigCache:
    def __init__(self) -> None:
        self._entries: dict[Any, Any] = {}
        # Last known good values from before the latest invalidation: served only while the
        # database cannot be read (a restart, a lock), so the API keeps working through it.
        self._stale: dict[Any, Any] = {}
        self._seen_version: int | None = None
        self._checked_at = 0.0
        self._local_version = 0
        self._lock = threading.Lock()
        self._refresher = LoopRefresher("config version", self._check, _interval)

    # -- version -------------------------------------------------------------------------
    def bump(self) -> None:
        with self._lock:
            self._local_version += 1
            self._stale.update(self._entries)
            self._entries.clear()
        client = get_sync_redis()
        if client is not None:
            try:
                client.incr(VERSION_KEY)
            except Exception:  # noqa: BLE001 - Redis down must not break an admin's save
                logger.warning("could not bump the shared config version in Redis")

    async def _shared_version(self) -> int | None:
        """The shared version, or None when it cannot be read (then keep what we have)."""
        client = get_async_redis()
        if client is None:
            return self._local_version
        try:
            value = await client.get(VERSION_KEY)
        except Exception:  # noqa: BLE001 - fail open on cached config, log once per check
            logger.warning("Redis unreachable; serving cached config")
            return None
        return int(value or 0) * 1_000_000 + self._local_version

    async def refresh_if_stale(self) -> None:
        interval = _interval()
        age = time.monotonic() - self._checked_at
        if age < interval:
            return
        if self._refresher.ensure_running() and age < interval * GRACE_INTERVALS:
            return  # the refresher's check is due or under way: serve what is cached
        await self._check()  # the first check, or the refresher is stuck: check now

    async def _check(self) -> None:
        self._checked_at = time.monotonic()
        version = await self._shared_version()
        if version is not None and version != self._seen_version:
            with self._lock:
                self._stale.update(self._entries)
                self._entries.clear()
            self._seen_version = version

    # -- entries -------------------------------------------------------------------------
    def get(self, key: Any) -> Any:
        return self._entries.get(key)

    def set(self, key: Any, value: Any) -> None:
        with self._lock:
            if len(self._entries) > 50_000:  # bound memory against key-guessing floods
                self._entries.clear()
            if len(self._stale) > 50_000:
                self._stale.clear()
            self._entries[key] = value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._stale.clear()
            self._checked_at = 0.0

    async def get_or_load(self, key: Any, loader: Callable[..., T], *args: Any) -> T:
        """The cached value, else ``loader(*args)`` run in a worker thread and cached. If the
        database fails, the last known good value is served (logged); with none, raises
        ConfigUnavailable."""
        await self.refresh_if_stale()
        cached: T | None = self._entries.get(key)
        if cached is not None:
            return cached
        try:
            value = await run_db(loader, *args)
        except DatabaseError:
            stale = self._stale.get(key)
            if stale is None:
                logger.exception("config lookup failed and no cached copy exists")
                raise ConfigUnavailable from None
            logger.warning("database unavailable; serving last known config for %s", key[0])
            return stale  # type: ignore[no-any-return]
        self.set(key, value)
        return value


def _interval() -> float:
    return float(settings.AIGATEWAY_CONFIG_CACHE_SECONDS)


config_cache = ConfigCache()


def bump_config_version(*args: Any, **kwargs: Any) -> None:
    """Signal receiver: any write to routing/tenancy/provider config invalidates caches.

    Bumped now and again when the transaction commits: a request that reloads the old row
    between the save and the commit would otherwise keep it cached (a revoked key staying
    valid) until the next change."""
    config_cache.bump()
    transaction.on_commit(config_cache.bump)

"""The config cache: a write anywhere invalidates cached keys/routes in every process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from aigateway.core.config_cache import ConfigCache
from aigateway.core.loop_refresher import GRACE_INTERVALS


async def test_a_bump_in_one_process_clears_the_cache_of_another(backend, settings):
    settings.AIGATEWAY_CONFIG_CACHE_SECONDS = 0  # check the shared version on every lookup
    writer, reader = ConfigCache(), ConfigCache()  # two "processes"
    await reader.refresh_if_stale()
    reader.set("k", "cached")
    await reader.refresh_if_stale()
    assert reader.get("k") == "cached"

    writer.bump()
    await reader.refresh_if_stale()
    if backend == "redis":
        assert reader.get("k") is None  # another process's write reached this one
    else:
        # In-process mode is single-process by definition: only its own bumps count.
        assert reader.get("k") == "cached"
        reader.bump()
        assert reader.get("k") is None


async def test_the_shared_version_is_checked_at_most_once_per_interval(redis_url, settings):
    settings.AIGATEWAY_CONFIG_CACHE_SECONDS = 3600
    writer, reader = ConfigCache(), ConfigCache()
    await reader.refresh_if_stale()
    reader.set("k", "cached")
    writer.bump()
    await reader.refresh_if_stale()
    assert reader.get("k") == "cached"  # within the interval: no Redis round trip, still cached


async def test_redis_down_keeps_serving_cached_config(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.AIGATEWAY_CONFIG_CACHE_SECONDS = 0
    cache = ConfigCache()
    cache.set("k", "cached")
    await cache.refresh_if_stale()
    await cache.refresh_if_stale()
    assert cache.get("k") == "cached"


async def test_after_the_first_check_the_version_is_checked_in_the_background(redis_url, settings):
    settings.AIGATEWAY_CONFIG_CACHE_SECONDS = 0.1
    writer, reader = ConfigCache(), ConfigCache()
    await reader.refresh_if_stale()  # the first check is the request's own; it starts the refresher
    reader.set("k", "cached")
    writer.bump()
    await asyncio.sleep(0.3)  # no lookup meanwhile: only the refresher can have checked
    assert reader.get("k") is None
    await reader._refresher.stop()


async def test_a_stalled_refresher_is_trusted_only_for_the_grace(redis_url, settings):
    settings.AIGATEWAY_CONFIG_CACHE_SECONDS = 0.3
    writer, reader = ConfigCache(), ConfigCache()
    await reader.refresh_if_stale()
    reader.set("k", "cached")
    writer.bump()
    time.sleep(0.4)  # the loop is blocked: the refresher cannot run
    await reader.refresh_if_stale()
    assert reader.get("k") == "cached"  # its check is due: served from the cache meanwhile
    time.sleep(GRACE_INTERVALS * 0.3)
    await reader.refresh_if_stale()  # past the grace: this lookup checks for itself
    assert reader.get("k") is None
    await reader._refresher.stop()


def _start_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='aigateway.settings'; "
        "django.setup()"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("extra", "ok"),
    [
        ({}, False),
        ({"SECRET_KEY": "x" * 50}, False),
        (
            {
                "SECRET_KEY": "x" * 50,
                "AIGATEWAY_ENCRYPTION_KEYS": "Xw2mDiKmeG9PWSPr1ZmzGW4lmjeg-kbZkyZ8Y0pcfc4=",
            },
            True,
        ),
        ({"DEBUG": "true"}, True),
        ({"AIGATEWAY_ALLOW_INSECURE_DEFAULTS": "true"}, True),
    ],
)
def test_production_refuses_development_secrets(extra, ok):
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECRET_KEY", "AIGATEWAY_", "DEBUG"))
    }
    env.update(extra)
    result = _start_settings(env)
    assert (result.returncode == 0) is ok, result.stderr[-500:]
    if not ok:
        assert "Refusing to start in production" in result.stderr
        missing = "SECRET_KEY" if "SECRET_KEY" not in extra else "AIGATEWAY_ENCRYPTION_KEYS"
        assert f"Set {missing}" in result.stderr


def test_a_malformed_setting_fails_loudly():
    import os

    env = dict(os.environ, DEBUG="maybe")
    result = _start_settings(env)
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr

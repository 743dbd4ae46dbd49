"""`make test` entry point: find or start the services the suite needs, then run pytest.

- DATABASE_URL set and reachable → PostgreSQL (CI); unset → SQLite.
- REDIS_URL set and reachable → that Redis; else a throwaway `redis-server` on a free port,
  stopped afterwards. So the suite passes on a machine with only the redis-server binary.
- pytest's exit code 5 ("no tests collected") is turned into a failure: a suite that ran
  nothing must not look green.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_throwaway_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("error: REDIS_URL is not set and no redis-server binary was found to start one.")
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="aigw-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if _reachable(url, port):
            return process, url
        time.sleep(0.05)
    process.kill()
    sys.exit("error: the throwaway redis-server did not start")


def main() -> int:
    env = os.environ.copy()
    redis_process = None
    database_url = env.get("DATABASE_URL", "")
    if database_url and not _reachable(database_url, 5432):
        print(f"DATABASE_URL is set but unreachable; using SQLite instead ({database_url})")
        env.pop("DATABASE_URL")
    redis_url = env.get("REDIS_URL", "")
    if not redis_url or not _reachable(redis_url, 6379):
        redis_process, env["REDIS_URL"] = _start_throwaway_redis()
        print(f"started a throwaway redis-server at {env['REDIS_URL']}")
    print(f"database: {env.get('DATABASE_URL') or 'SQLite'}; redis: {env['REDIS_URL']}")
    # The suite decides per test which backend it uses; the app itself defaults to in-process.
    env["AIGATEWAY_TEST_REDIS_URL"] = env.pop("REDIS_URL")
    env.setdefault("AIGATEWAY_TEST_REDIS_DB_BASE", str(random.randrange(1, 16)))
    # Threads of the live test server must not keep database sessions open past a test.
    env.setdefault("DATABASE_CONN_MAX_AGE", "0")
    try:
        args = sys.argv[1:] or ["-n", "2", "--dist", "loadfile"]
        code = subprocess.call([sys.executable, "-m", "pytest", *args], env=env)
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)
    if code == 5:
        print("error: pytest collected no tests; treating that as a failure")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())

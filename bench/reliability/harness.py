"""Processes for the reliability drills, each started and stopped by the drill itself.

- ``RedisServer``: a private ``redis-server`` on a free port (no persistence), which a drill
  may stop and start again on the same port.
- ``PostgresCluster``: a private PostgreSQL cluster (``initdb`` into a temporary directory, as
  the ``postgres`` OS user when running as root: initdb refuses root), trust auth on
  127.0.0.1; ``stop()``/``start()`` restart it, ``destroy()`` removes it.
- ``Gateway``: the production-like gateway (``manage.py migrate`` and ``gateway apply``, then
  uvicorn with 2 workers, uvloop + httptools, DEBUG off, explicit keys), its worker PIDs.
- the load process and its records are in bench/reliability/outcomes.py.
- ``free_port``, ``wait_until``, ``http_get``.

Everything registers itself for cleanup at interpreter exit as well, so a failing drill or
test leaves no server behind.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
_cleanups: list[Callable[[], None]] = []


def register_cleanup(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` at interpreter exit (after a failure that skipped the normal stop)."""
    _cleanups.append(cleanup)


@atexit.register
def _cleanup_everything() -> None:
    for cleanup in reversed(_cleanups):
        with contextlib.suppress(Exception):
            cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> HttpAnswer:
    """A GET that returns error statuses instead of raising (connection errors still raise)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpAnswer(response.status, _lower(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, _lower(error.headers), error.read())


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


# -- Redis ---------------------------------------------------------------------------------
class RedisServer:
    """A private redis-server (no RDB, no AOF) on ``port``; stop() and start() again keep the
    port, as a restarted Redis would (and lose every key, as this one persists nothing)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = tempfile.mkdtemp(prefix="aigw-rel-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        register_cleanup(self.destroy)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> Self:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, 10, f"redis-server on port {self.port}", step=0.05)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()


# -- PostgreSQL ----------------------------------------------------------------------------
def _pg_bindir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return Path(initdb).parent


class PostgresCluster:
    """A private cluster in a temporary directory, listening on 127.0.0.1:``port`` with trust
    auth for the ``postgres`` role. Fast and throwaway: fsync off."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bindir = _pg_bindir()
        self.workdir = Path(tempfile.mkdtemp(prefix="aigw-rel-pg-"))
        self.datadir = self.workdir / "data"
        self.logfile = self.workdir / "postgres.log"
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            shutil.chown(self.workdir, "postgres", "postgres")
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self.initialised = False
        register_cleanup(self.destroy)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self._as_postgres, *args],
            check=True,
            timeout=timeout,
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> Self:
        if not self.initialised:
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            )
            self.initialised = True
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=100 -c shared_buffers=32MB"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        """``fast``: disconnect clients and shut down cleanly (what a restart does)."""
        if self.initialised and (self.datadir / "postmaster.pid").exists():
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
                "stop",
                timeout=90,
            )

    def up(self) -> bool:
        return port_open(self.port)

    def execute(
        self, sql: str, dbname: str = "postgres", params: tuple[Any, ...] | None = None
    ) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str, template: str | None = None) -> str:
        clause = f" TEMPLATE {template}" if template else ""
        self.execute(f"CREATE DATABASE {name}{clause}")
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()


# -- the gateway ---------------------------------------------------------------------------
def gateway_environment(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Production mode (DEBUG off, explicit secret and encryption keys, no insecure
    defaults) on the given database and Redis; nothing inherited that points elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIGATEWAY_", "DATABASE_", "REDIS_", "CELERY_", "PYTEST_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="aigateway.settings",
        DEBUG="false",
        SECRET_KEY=base64.b64encode(os.urandom(48)).decode(),
        AIGATEWAY_ENCRYPTION_KEYS=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL="",  # no broker: /readyz checks the database and Redis only
        LOG_LEVEL="WARNING",
        LOG_FORMAT="plain",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


@dataclass
class Gateway:
    env: dict[str, str]
    workers: int = 2
    port: int = field(default_factory=free_port)
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self, config_yaml: Path, superuser: str = "") -> None:
        """Migrate, apply the configuration and create the superuser (password from the
        RELIABILITY_SUPERUSER_PASSWORD variable) in one process: each Django start costs
        seconds on a busy 2-core machine."""
        script = (
            "import os\n"
            "from django.core.management import call_command\n"
            "from django.contrib.auth import get_user_model\n"
            "call_command('migrate', interactive=False, verbosity=0)\n"
            f"call_command('gateway', 'apply', {str(config_yaml)!r})\n"
            f"if {superuser!r}:\n"
            f"    get_user_model().objects.create_superuser({superuser!r}, "
            f"'{superuser}@reliability.test', os.environ['RELIABILITY_SUPERUSER_PASSWORD'])\n"
        )
        manage(self.env, "shell", "-c", script)

    def start(self, timeout: float = 90) -> Self:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "uvicorn",
                    "aigateway.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                    "--no-access-log",
                    "--lifespan",
                    "on",
                    "--loop",
                    "uvloop",
                    "--timeout-graceful-shutdown",
                    "20",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as one on failure
            )
        register_cleanup(self.kill)

        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError("the gateway exited at startup:\n" + self.log_tail())
            try:
                return http_get(self.base_url + "/healthz", timeout=2).status == 200 and (
                    len(self.worker_pids()) == self.workers
                )
            except OSError:
                return False

        wait_until(ready, timeout, "the gateway to answer /healthz", step=0.2)
        return self

    def worker_pids(self) -> set[int]:
        """The PIDs of the serving worker processes (children of uvicorn's supervisor that
        run the application; not multiprocessing's helper processes)."""
        if self.process is None:
            return set()
        pids = set()
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                pid = int(stat.split("/")[2])
                if int(fields[1]) != self.process.pid:
                    continue
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if b"resource_tracker" not in cmdline and b"semaphore_tracker" not in cmdline:
                pids.add(pid)
        return pids

    def stop(self, timeout: float = 40) -> int | None:
        """SIGTERM (graceful: in-flight requests finish, buffered records are flushed)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()

"""The system under drill: fake upstreams, a private PostgreSQL and Redis, the gateway.

One ``Stack`` serves all drills in turn (each drill leaves it healthy): three wire-level fake
upstreams (tests/fakes/upstream.py) in this process, so a drill switches their faults
directly; a private PostgreSQL cluster and redis-server; the gateway under uvicorn with 2
workers, configured with ``manage.py gateway apply`` from the YAML below:

- route ``drill``: an OpenAI-kind primary and an Anthropic-kind fallback, ordered, 2 retries,
  10 s deadline; the load key calls it (with high limits, so every call runs the limiter);
- route ``drill-solo``: one deployment on its own upstream, 3 retries: retries are visible
  there (no fallback to hide them);
- keys ``limit-during`` and ``limit-after``: 5 requests per minute, for limit checks.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import redis

if TYPE_CHECKING:
    from bench.reliability.report import DrillReport

from bench.reliability.harness import (
    Gateway,
    PostgresCluster,
    RedisServer,
    gateway_environment,
    http_get,
    wait_until,
)
from bench.reliability.outcomes import LoadProcess
from tests.fakes.upstream import FakeUpstream

UPSTREAM_KEY = "sk-reliability-upstream-00000000"
LOAD_KEY = "agw-reliability-load-000000000000000000"
LIMIT_DURING_KEY = "agw-reliability-limit-during-000000000"
LIMIT_AFTER_KEY = "agw-reliability-limit-after-0000000000"
LOW_RPM = 5
ROUTE_TIMEOUT = 10.0  # the drill route's deadline (seconds)
READ_TIMEOUT = 2.0  # AIGATEWAY_UPSTREAM_READ_TIMEOUT: a silent upstream is given up after this
BREAKER_RECOVERY = 1.5  # AIGATEWAY_BREAKER_RECOVERY_SECONDS
OPS_USER, OPS_PASSWORD = "ops", "reliability-ops-password-1"


def gateway_yaml(primary: FakeUpstream, fallback: FakeUpstream, solo: FakeUpstream) -> str:
    return f"""version: 1
providers:
  - name: primary
    kind: openai
    base_url: {primary.openai_base_url}
    credentials: [{{name: key, secret: env:RELIABILITY_UPSTREAM_KEY}}]
  - name: fallback
    kind: anthropic
    base_url: {fallback.base_url}
    credentials: [{{name: key, secret: env:RELIABILITY_UPSTREAM_KEY}}]
  - name: solo
    kind: openai
    base_url: {solo.openai_base_url}
    credentials: [{{name: key, secret: env:RELIABILITY_UPSTREAM_KEY}}]
routes:
  - name: drill
    strategy: ordered
    cache: {{mode: "off"}}
    retries: {{max: 2, backoff_base_seconds: 0.05, backoff_cap_seconds: 0.5,
               timeout_seconds: {ROUTE_TIMEOUT}}}
    deployments:
      - {{provider: primary, model: drill-primary}}
      - {{provider: fallback, model: drill-fallback}}
  - name: drill-solo
    cache: {{mode: "off"}}
    retries: {{max: 3, backoff_base_seconds: 0.1, backoff_cap_seconds: 0.5,
               timeout_seconds: {ROUTE_TIMEOUT}}}
    deployments:
      - {{provider: solo, model: solo-primary}}
organisations:
  - slug: reliability
    name: Reliability
    teams:
      - slug: load
        name: Load
        routes: [drill, drill-solo]
        api_keys:
          - {{name: load, secret: env:RELIABILITY_LOAD_KEY}}
          - {{name: limit-during, secret: env:RELIABILITY_LIMIT_DURING_KEY}}
          - {{name: limit-after, secret: env:RELIABILITY_LIMIT_AFTER_KEY}}
limits:
  - {{scope: key, target: reliability/load/load, kind: rpm, value: 1000000000}}
  - {{scope: team, target: reliability/load, kind: tpm, value: 1000000000}}
  - {{scope: key, target: reliability/load/limit-during, kind: rpm, value: {LOW_RPM}}}
  - {{scope: key, target: reliability/load/limit-after, kind: rpm, value: {LOW_RPM}}}
"""


@dataclass
class Stack:
    workers: int = 2
    limits_redis_failure: str = "open"
    primary: FakeUpstream = field(default_factory=lambda: FakeUpstream(api_key=UPSTREAM_KEY))
    fallback: FakeUpstream = field(default_factory=lambda: FakeUpstream(api_key=UPSTREAM_KEY))
    solo: FakeUpstream = field(default_factory=lambda: FakeUpstream(api_key=UPSTREAM_KEY))
    postgres: PostgresCluster = field(default_factory=PostgresCluster)
    redis: RedisServer = field(default_factory=RedisServer)
    gateway: Gateway | None = None
    deployments: dict[str, int] = field(default_factory=dict)  # upstream model -> id
    session_cookie: str = ""
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aigw-rel-")))
    keep_workdir: bool = False  # keep the gateway's log and the load's records (a failure)

    @property
    def base_url(self) -> str:
        assert self.gateway is not None
        return self.gateway.base_url

    @property
    def database_url(self) -> str:
        return self.postgres.url("aigateway")

    def start(self) -> Self:
        for fake in (self.primary, self.fallback, self.solo):
            fake.start()
        self.postgres.start()
        self.redis.start()
        self.postgres.create_database("aigateway")
        env = gateway_environment(
            self.database_url,
            self.redis.url(0),
            AIGATEWAY_UPSTREAM_READ_TIMEOUT=str(READ_TIMEOUT),
            AIGATEWAY_UPSTREAM_CONNECT_TIMEOUT="2",
            AIGATEWAY_BREAKER_FAILURES="5",
            AIGATEWAY_BREAKER_RECOVERY_SECONDS=str(BREAKER_RECOVERY),
            AIGATEWAY_BREAKER_PROBE_TIMEOUT_SECONDS="5",
            AIGATEWAY_LIMITS_REDIS_FAILURE=self.limits_redis_failure,
            RELIABILITY_UPSTREAM_KEY=UPSTREAM_KEY,
            RELIABILITY_LOAD_KEY=LOAD_KEY,
            RELIABILITY_LIMIT_DURING_KEY=LIMIT_DURING_KEY,
            RELIABILITY_LIMIT_AFTER_KEY=LIMIT_AFTER_KEY,
            RELIABILITY_SUPERUSER_PASSWORD=OPS_PASSWORD,
        )
        config = self.workdir / "gateway.yaml"
        config.write_text(gateway_yaml(self.primary, self.fallback, self.solo))
        self.gateway = Gateway(env, workers=self.workers, log_path=self.workdir / "gateway.log")
        self.gateway.prepare(config, superuser=OPS_USER)
        rows = self.postgres.execute(
            "SELECT upstream_model, id FROM routing_deployment", "aigateway"
        )
        self.deployments = {model: pk for model, pk in rows}
        self.gateway.start()
        return self

    def destroy(self) -> None:
        try:
            if self.gateway is not None:
                self.gateway.stop()
        finally:
            for fake in (self.primary, self.fallback, self.solo):
                with contextlib.suppress(Exception):
                    fake.stop()
            self.redis.destroy()
            self.postgres.destroy()
            if not self.keep_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # -- what drills read ----------------------------------------------------------------
    def load(self, name: str, seconds: float, rate: float) -> LoadProcess:
        """The load process against route ``drill`` with the load key, started."""
        out = self.workdir / f"{name}-{time.time():.0f}.jsonl"
        return LoadProcess(self.base_url, LOAD_KEY, seconds=seconds, rate=rate, out=out).start()

    def sign_in(self) -> None:
        """A dashboard session for the superuser created at start (pages need one)."""
        self.session_cookie = login(self.base_url, OPS_USER, OPS_PASSWORD)

    def page(self, path: str) -> Any:
        return http_get(self.base_url + path, {"Cookie": self.session_cookie}, timeout=15)

    def breaker_state(self, upstream_model: str) -> str:
        """The shared breaker's state in Redis ("closed" when it has no hash yet)."""
        client = redis.Redis.from_url(
            self.redis.url(0), socket_timeout=1, socket_connect_timeout=1, decode_responses=True
        )
        try:
            key = f"aigw:breaker:{self.deployments[upstream_model]}"
            forced, state = client.hmget(key, ["forced", "state"])
        finally:
            client.close()
        if forced:
            return "forced_" + str(forced)
        return str(state or "closed")


def login(base_url: str, username: str, password: str) -> str:
    """Sign in through the login form; the session cookie header for later requests."""
    import http.cookiejar
    import urllib.parse
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base_url + "/login/", timeout=15).read().decode()
    token = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/"}
    ).encode()
    request = urllib.request.Request(
        base_url + "/login/", data=form, headers={"Referer": base_url + "/login/"}
    )
    opener.open(request, timeout=15).read()
    cookies = {c.name: c.value for c in jar}
    if "sessionid" not in cookies:
        raise RuntimeError("signing in to the dashboard failed")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


class Sampler:
    """Calls ``probe`` every ``interval`` seconds in a thread, keeping (time it was sent,
    value) pairs (``/readyz`` answers, breaker states); exceptions are kept as their type
    name."""

    def __init__(self, probe: Any, interval: float = 0.2) -> None:
        self.probe, self.interval = probe, interval
        self.samples: list[tuple[float, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = time.time()  # what a sample says holds from when it was asked
            try:
                value = self.probe()
            except Exception as exc:  # noqa: BLE001 - a failed probe is a sample too
                value = "error:" + type(exc).__name__
            self.samples.append((sent, value))
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def between(self, start: float, end: float) -> list[Any]:
        return [value for at, value in self.samples if start <= at <= end]


def readyz_probe(base_url: str) -> Any:
    def probe() -> str:
        answer = http_get(base_url + "/readyz", timeout=3)
        checks = answer.json().get("checks", {})
        down = sorted(name for name, value in checks.items() if value != "ok")
        return f"{answer.status}:" + (",".join(down) + " down" if down else "ready")

    return probe


def ready_again(ready: Sampler, timeout: float = 30) -> float | None:
    """When /readyz first answered ready again (None: not within ``timeout``)."""
    since = time.time()
    try:
        wait_until(
            lambda: any(at > since and value == "200:ready" for at, value in ready.samples),
            timeout,
            "/readyz to report ready",
        )
    except TimeoutError:
        return None
    return next(at for at, value in ready.samples if at > since and value == "200:ready")


def settled(stopped: float, restarting: float) -> tuple[float, float]:
    """The part of an outage in which every /readyz answer must say "down": a probe sent just
    after the stop may have checked before it, and one sent up to /readyz's own timeout (1 s)
    before the restart, or queued behind a busy worker, may check after it."""
    return stopped + 0.5, max(stopped + 0.5, restarting - 1.5)


def check_readyz_cycle(
    report: DrillReport, ready: Sampler, dependency: str, stopped: float, restarting: float,
    restarted: float, recovered: float | None,
) -> None:  # fmt: skip
    """/readyz named ``dependency`` down for the whole outage and was ready again after."""
    outage_answers = set(ready.between(*settled(stopped, restarting)))
    report.check(
        f"/readyz reported {dependency} down during the outage, never ready",
        f"503:{dependency} down" in outage_answers and "200:ready" not in outage_answers,
        ", ".join(sorted(outage_answers)),
    )
    report.check(
        "/readyz reported ready again after the restart",
        recovered is not None,
        f"{recovered - restarted:.1f} s after {dependency} started" if recovered else "",
    )

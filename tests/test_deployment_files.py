"""The production deployment files: docker-compose.yml, Dockerfile, deploy/nginx.conf.

No Docker engine is needed: the compose file is validated against the compose specification
(check-jsonschema's vendored copy, so this works offline) and its wiring is checked as data.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"

APP_SERVICES = ("web", "worker", "beat", "migrate")  # run the aigateway image
# What the application needs from its environment in production (see aigateway/settings.py).
REQUIRED_APP_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
    "AIGATEWAY_ENCRYPTION_KEYS",
    "ALLOWED_HOSTS",
)
# Secrets have no default: `${NAME:?message}` makes compose refuse to start without them.
REQUIRED_SECRETS = ("SECRET_KEY", "AIGATEWAY_ENCRYPTION_KEYS", "POSTGRES_PASSWORD")


def run_schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())  # resolves the x-app anchors and merges
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" list form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short form: started, no condition
        return {name: {"condition": "service_started"} for name in deps}
    return deps


def named_volumes(service: dict[str, Any]) -> set[str]:
    names = set()
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type", "volume") == "volume" and volume.get("source"):
                names.add(volume["source"])
            continue
        source = volume.split(":", 1)[0]
        if ":" in volume and not source.startswith((".", "/", "~", "$")):
            names.add(source)
    return names


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Short-syntax mounts as {source: target}."""
    return {
        v.split(":")[0]: v.split(":")[1] for v in service.get("volumes") or [] if isinstance(v, str)
    }


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


# -- (a) the compose specification ----------------------------------------------------------
def test_compose_file_is_valid_against_the_compose_spec() -> None:
    result = run_schema_check(COMPOSE_FILE)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_the_schema_check_does_reject_an_invalid_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: x\n    depends_on: 42\n    restart: 7\n")

    result = run_schema_check(broken)

    assert result.returncode != 0, result.stdout


# -- (b) the wiring -------------------------------------------------------------------------
def test_all_roles_are_present(services: dict[str, dict[str, Any]]) -> None:
    assert {"web", "worker", "beat", "migrate", "postgres", "redis"} <= set(services)


def test_every_dependency_is_a_defined_service(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency in depends_on(service):
            assert dependency in services, f"{name} depends on undefined service {dependency}"
            assert dependency != name


def test_dependency_conditions(services: dict[str, dict[str, Any]]) -> None:
    for name in ("web", "worker"):
        deps = depends_on(services[name])
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    migrate_deps = depends_on(services["migrate"])
    assert migrate_deps["postgres"]["condition"] == "service_healthy"


def test_every_named_volume_is_declared_and_used(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    used = set().union(*(named_volumes(s) for s in services.values()))

    assert used <= declared, f"undeclared volumes: {used - declared}"
    assert declared <= used, f"declared but unused volumes: {declared - used}"


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name == "migrate":
            assert "healthcheck" not in service
            assert service.get("restart") in ("no", None), "a one-shot must not be restarted"
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        assert check.get("test") and check["test"] != ["NONE"], name


def test_health_checks_probe_the_right_thing(services: dict[str, dict[str, Any]]) -> None:
    def probe(name: str) -> str:
        test = services[name]["healthcheck"]["test"]
        return " ".join(test) if isinstance(test, list) else test

    assert "/healthz" in probe("web")
    assert "celery -A aigateway inspect ping" in probe("worker")
    assert "pg_isready" in probe("postgres")
    assert "redis-cli ping" in probe("redis")


def test_process_commands(services: dict[str, dict[str, Any]]) -> None:
    web = command_text(services["web"])
    assert "aigateway.asgi:application" in web
    assert re.search(r"--workers\s+\S+", web)
    assert "--lifespan on" in web
    assert "--host 0.0.0.0" in web
    assert "celery -A aigateway worker" in command_text(services["worker"])
    assert "celery -A aigateway beat" in command_text(services["beat"])
    assert "manage.py migrate" in command_text(services["migrate"])


def test_app_services_share_one_image_and_read_dot_env(
    services: dict[str, dict[str, Any]],
) -> None:
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        env_file = services[name].get("env_file")
        assert env_file in (".env", [".env"]), name


@pytest.mark.parametrize("name", ["web", "worker", "beat", "migrate"])
def test_app_environment(services: dict[str, dict[str, Any]], name: str) -> None:
    env = environment(services[name])

    missing = [var for var in REQUIRED_APP_ENV if not env.get(var)]
    assert not missing, f"{name} does not set {missing}"
    assert re.fullmatch(r"postgres(ql)?://aigateway:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432/aigateway",
                        env["DATABASE_URL"])  # fmt: skip
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
    assert env["REDIS_URL"] != env["CELERY_BROKER_URL"], "keep the broker in its own database"
    for secret in ("SECRET_KEY", "AIGATEWAY_ENCRYPTION_KEYS"):
        assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", env[secret]), f"{name}: {secret}"
    assert env.get("DEBUG", "false").lower() in ("false", "0", "no", "off")
    assert "AIGATEWAY_ALLOW_INSECURE_DEFAULTS" not in env


def test_required_secrets_have_no_default(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text()
    for secret in REQUIRED_SECRETS:
        uses = re.findall(rf"\$\{{{secret}(:?[-?+]?)", text)
        assert uses, f"{secret} is never used"
        assert set(uses) == {":?"}, f"{secret} must always be ${{{secret}:?...}}"


def test_compose_sets_only_variables_the_app_reads(services: dict[str, dict[str, Any]]) -> None:
    """A typo in a variable name would be silently ignored by the app; catch it here."""
    settings_source = (ROOT / "aigateway" / "settings.py").read_text()
    read = set(re.findall(r"env_(?:str|bool|int|float|list)\(\s*\"([A-Z0-9_]+)\"",
                          settings_source))  # fmt: skip
    assert set(REQUIRED_APP_ENV) <= read
    for name in APP_SERVICES:
        unknown = set(environment(services[name])) - read
        assert not unknown, f"{name} sets variables settings.py never reads: {unknown}"


def test_only_the_proxy_is_published(services: dict[str, dict[str, Any]]) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}


def test_static_files_reach_the_proxy(services: dict[str, dict[str, Any]]) -> None:
    """migrate collects into the `static` volume at STATIC_ROOT; nginx serves that volume."""
    static_root = environment(services["migrate"])["STATIC_ROOT"]
    assert mounts(services["migrate"]).get("static") == static_root
    proxy_mounts = mounts(services["proxy"])
    assert "static" in proxy_mounts
    assert "collectstatic" in command_text(services["migrate"])
    assert any(src == "./deploy/nginx.conf" for src in proxy_mounts)
    assert f"alias {proxy_mounts['static'].rstrip('/')}/;" in NGINX_CONF.read_text()


def test_nginx_proxies_to_web_and_streams() -> None:
    conf = NGINX_CONF.read_text()
    assert re.search(r"proxy_pass\s+\$web_upstream;", conf)
    assert "http://web:8000" in conf
    assert "location /static/" in conf
    assert "proxy_buffering off;" in conf  # server-sent events must not be buffered
    match = re.search(r"client_max_body_size\s+(\d+)m;", conf)
    assert match and int(match.group(1)) * 1024 * 1024 > 4 * 1024 * 1024  # > app limit


# -- (c) the image --------------------------------------------------------------------------
def test_dockerfile_builds_a_non_root_python_312_image() -> None:
    instructions = dockerfile_instructions()
    [base] = [args for op, args in instructions if op == "FROM"]
    assert base.startswith("python:3.12-slim")
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "-r requirements.txt" in runs


def test_dockerfile_collects_static_with_insecure_defaults_only_for_that_step() -> None:
    instructions = dockerfile_instructions()
    [collect] = [args for op, args in instructions if op == "RUN" and "collectstatic" in args]
    assert "AIGATEWAY_ALLOW_INSECURE_DEFAULTS=true" in collect
    persistent = " ".join(args for op, args in instructions if op in ("ENV", "ARG"))
    assert "AIGATEWAY_ALLOW_INSECURE_DEFAULTS" not in persistent


def test_dockerfile_cmd_runs_the_asgi_app() -> None:
    [cmd] = [args for op, args in dockerfile_instructions() if op == "CMD"]
    assert "aigateway.asgi:application" in cmd
    assert "${WEB_WORKERS:-4}" in cmd
    for flag in ("--no-access-log", "--lifespan on", "--host 0.0.0.0", "--port 8000"):
        assert flag in cmd
    # uvicorn under aigateway/serve.py (refuses new connections while draining) is PID 1
    assert "exec python -m aigateway.serve" in cmd


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }  # fmt: skip
    assert {".env", ".git", ".venv", "var"} <= ignored


def test_deployment_guide_covers_the_basics() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for needle in (
        "docker compose up -d",
        "docker compose run --rm web python manage.py createsuperuser",
        "SECRET_KEY",
        "AIGATEWAY_ENCRYPTION_KEYS",
        "WEB_WORKERS",
        "--scale worker=",
        "Redis",
    ):
        assert needle in guide, needle

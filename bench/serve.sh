#!/usr/bin/env bash
# The production-like benchmark gateway (`make bench-serve`; bench/compare.py runs it too):
# applies bench/gateway.yaml to its own database and serves it in the foreground with uvicorn,
# WORKERS processes, uvloop + httptools, no access log, DEBUG off, Redis on.
#
# Environment (all optional):
#   HOST, PORT (127.0.0.1, 8000), WORKERS (2)
#   DATABASE_URL   default sqlite:///var/bench.sqlite3
#   REDIS_URL      default redis://127.0.0.1:6379/12 (rate limits, caches, breakers, config)
#   BENCH_KEY, BENCH_KEY_NOLIMITS   the bench teams' API keys (documented defaults below)
#   SECRET_KEY, AIGATEWAY_ENCRYPTION_KEYS   random per start when unset (the bench database
#                  holds no encrypted secret, so a new key each time loses nothing)
#   LOG_LEVEL (INFO: one JSON request line per call, as in production), PY (.venv/bin/python)
#   GATEWAY_CONFIG the YAML to apply (bench/gateway.yaml; bench/soak renders its own)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
export DEBUG=false
unset AIGATEWAY_ALLOW_INSECURE_DEFAULTS  # production mode: explicit keys, never the dev ones
export SECRET_KEY=${SECRET_KEY:-$(head -c 48 /dev/urandom | base64 -w0)}
# A Fernet key is 32 random bytes, URL-safe base64.
export AIGATEWAY_ENCRYPTION_KEYS=${AIGATEWAY_ENCRYPTION_KEYS:-$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_')}
export DATABASE_URL=${DATABASE_URL:-sqlite:///$PWD/var/bench.sqlite3}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/12}
export BENCH_KEY=${BENCH_KEY:-agw-bench-0000000000000000000000000000}
export BENCH_KEY_NOLIMITS=${BENCH_KEY_NOLIMITS:-agw-bench-nolimits-00000000000000000000}
export BENCH_UPSTREAM_KEY=${BENCH_UPSTREAM_KEY:-sk-bench-upstream-not-checked}
export LOG_LEVEL=${LOG_LEVEL:-INFO} LOG_FORMAT=${LOG_FORMAT:-json}

mkdir -p var
"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py gateway apply "${GATEWAY_CONFIG:-bench/gateway.yaml}" >/dev/null
echo "bench gateway on http://${HOST:-127.0.0.1}:${PORT:-8000}/v1 (workers: ${WORKERS:-2}, Redis: $REDIS_URL)" >&2
exec "$PY" -m aigateway.serve aigateway.asgi:application --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" \
	--workers "${WORKERS:-2}" --no-access-log --lifespan on --loop uvloop

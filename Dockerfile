# syntax=docker/dockerfile:1
# aigateway production image. One image runs every process role; docker-compose.yml picks the
# command: web (uvicorn, the default CMD), worker and beat (celery), migrate (one-shot).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=aigateway.settings \
    STATIC_ROOT=/app/staticfiles

# An unprivileged user with a fixed uid (runAsNonRoot-friendly). The code stays root-owned,
# so the running process cannot modify it.
RUN groupadd --system --gid 10001 aigateway \
    && useradd --system --uid 10001 --gid aigateway --create-home --home-dir /home/aigateway \
        --shell /usr/sbin/nologin aigateway

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes. Every native
# dependency ships as a manylinux wheel, so no compiler or -dev package is needed. lxml and
# xmlsec must link one libxml2: take both as wheels (never build one from source against the
# system library) and fail the build if the pair does not import.
COPY requirements.txt requirements-nodeps.txt ./
RUN python -m venv "$VIRTUAL_ENV" \
    && pip install --only-binary=lxml,xmlsec -r requirements.txt \
    && pip install --no-deps -r requirements-nodeps.txt \
    && python -c "import xmlsec, lxml.etree"

COPY . .

# Static files are collected into the image at build time (development secrets are allowed
# for this step only: nothing here reads them). The compose `migrate` service re-collects them
# into the shared `static` volume on every deploy; nginx serves them from there.
RUN python -m compileall -q aigateway auth providers \
    && AIGATEWAY_ALLOW_INSECURE_DEFAULTS=true python manage.py collectstatic --no-input -v 0 \
    && chown -R aigateway:aigateway "$STATIC_ROOT"

USER 10001:10001
EXPOSE 8000

# Shell form through `exec` so WEB_WORKERS is read at start and the server is PID 1 (it gets
# SIGTERM, finishes in-flight requests, then the lifespan shutdown flushes buffered usage).
# The web workers share their Prometheus metrics through PROMETHEUS_MULTIPROC_DIR (set here,
# for the web role only), emptied before they start: see docs/observability.md.
# aigateway/serve.py is uvicorn's command line with a supervisor that stops listening as the
# drain starts, so new connections are refused instead of waiting unanswered.
CMD ["sh", "-c", "export PROMETHEUS_MULTIPROC_DIR=\"${PROMETHEUS_MULTIPROC_DIR:-/tmp/aigateway-metrics}\" && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && rm -f \"$PROMETHEUS_MULTIPROC_DIR\"/*.db && exec python -m aigateway.serve aigateway.asgi:application --workers \"${WEB_WORKERS:-4}\" --no-access-log --lifespan on --timeout-graceful-shutdown 30 --host 0.0.0.0 --port 8000"]

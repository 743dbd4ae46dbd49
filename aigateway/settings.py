"""Django settings for aigateway, driven by environment variables (12-factor).

Every setting has a safe local default so ``make run`` works with nothing set. Production values
are documented in docs/configuration.md. An optional ``.env`` file in the project root is read
first; real environment variables win over it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from dotenv import load_dotenv

from aigateway.env import env_bool, env_float, env_int, env_list, env_regex_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)

# Marker values: production refuses to start while these are in use (see the check at the end).
INSECURE_SECRET_KEY = "insecure-dev-secret-key-change-me"
INSECURE_ENCRYPTION_KEY = "ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktY2hhbmdlISE="  # Fernet key, dev only

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", INSECURE_SECRET_KEY)
# Comma-separated Fernet keys; the first encrypts, all decrypt (MultiFernet), so keys rotate.
AIGATEWAY_ENCRYPTION_KEYS = env_list("AIGATEWAY_ENCRYPTION_KEYS", [INSECURE_ENCRYPTION_KEY])
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # django-ninja: in INSTALLED_APPS so /api/docs serves its bundled Swagger UI from
    # /static/ninja/ (collectstatic) instead of loading it from a CDN.
    "ninja",
    "auth.apps.IdentityConfig",
    "providers.apps.ProvidersConfig",
    "aigateway.routing.apps.RoutingConfig",
    "aigateway.usage.apps.UsageConfig",
    "aigateway.audit.apps.AuditConfig",
    "aigateway.quotas.apps.QuotasConfig",
    "aigateway.core.apps.CoreConfig",
    "aigateway.web.apps.WebConfig",
    "aigateway.batches.apps.BatchesConfig",
    "aigateway.guardrails.apps.GuardrailsConfig",
    # Single sign-on (SAML, docs/sso.md): allauth's SAML provider, configured per organisation
    # at runtime (SocialApp rows written by auth/sso/services.py), and our SSO app.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.saml",
    "auth.sso.apps.SSOConfig",
    "aigateway.playground.apps.PlaygroundConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # SECURE_CSP below; the API doors get a constant policy instead (core/asgi_handler.py).
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Outside the others, so responses made from their exceptions (a 400 for a bad Host)
    # get it too.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Outside everything that reads the database: a page failing while it is down answers a
    # friendly 503 (aigateway/web/unavailable.py).
    "aigateway.web.unavailable.database_unavailable_middleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Signs an SSO session out at its next request once the user has no role left (one query,
    # SSO sessions only), and gives allauth its request context.
    "auth.sso.middleware.sso_session_middleware",
    "allauth.account.middleware.AccountMiddleware",
    # Lets the forms of an SSO session reach its IdP's single-logout URL (form-action).
    "auth.sso.csp.sso_form_action_middleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "aigateway.urls"
ASGI_APPLICATION = "aigateway.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions and a busy timeout make concurrent writers (and a writer behind
    # readers) wait instead of failing with "database is locked". The test database is a
    # file, not shared-cache memory (whose table locks fail at once instead of waiting), so
    # worker subprocesses can open it too. PostgreSQL is the production database.
    # WAL: readers never wait for the writer, and a commit appends to the log instead of
    # rewriting a journal file with two fsyncs (synchronous=NORMAL: durable at checkpoints,
    # never corrupt) — the write-behind flushes' commits were ~14 % of their time.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # One file per test process: concurrent test runs must not share (and delete) it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"aigateway-test-{os.getpid()}.sqlite3")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "web:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# `make run` serves /static/ from the app itself (no collectstatic, no nginx); in production
# nginx serves the collected files (deploy/nginx.conf) and this stays off.
AIGATEWAY_SERVE_STATIC = env_bool("AIGATEWAY_SERVE_STATIC", False)

# Largest request body we read. The API answers a bigger body with an OpenAI-style 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("AIGATEWAY_MAX_BODY_BYTES", 4 * 1024 * 1024)
AIGATEWAY_MAX_BODY_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE
# Request size limits of the OpenAI-compatible API (400 naming the parameter beyond them).
# OpenAI's own: 2048 messages, 2048 embeddings inputs of at most 8192 tokens each.
AIGATEWAY_MAX_MESSAGES = env_int("AIGATEWAY_MAX_MESSAGES", 2048)
# Upper bound for max_tokens / max_completion_tokens (it also sizes the token-limit estimate).
AIGATEWAY_MAX_OUTPUT_TOKENS = env_int("AIGATEWAY_MAX_OUTPUT_TOKENS", 131_072)
AIGATEWAY_MAX_EMBEDDING_INPUTS = env_int("AIGATEWAY_MAX_EMBEDDING_INPUTS", 2048)
AIGATEWAY_MAX_EMBEDDING_INPUT_TOKENS = env_int("AIGATEWAY_MAX_EMBEDDING_INPUT_TOKENS", 8192)
# Failed API-key authentications per client address (aigateway/gateway/auth_failures.py): a
# bucket of BURST refilled at PER_MINUTE; when empty the address gets 429 until it refills,
# valid key or not. PER_MINUTE 0 turns it off.
AIGATEWAY_AUTH_FAILURES_PER_MINUTE = env_int("AIGATEWAY_AUTH_FAILURES_PER_MINUTE", 30)
AIGATEWAY_AUTH_FAILURE_BURST = env_int("AIGATEWAY_AUTH_FAILURE_BURST", 50)

# Redis: shared state for several processes. Unset means in-process backends (single process).
REDIS_URL = env_str("REDIS_URL", "")

# Celery: unset broker means tasks run eagerly in the calling process (make run, unit tests).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == ""
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
# Redis transport: an unacknowledged task (late ack, its worker killed) goes back to the queue
# after this many seconds. It must exceed the longest task; batches do not wait for it (their
# own lease and the batches-sweep below resume a stalled batch much sooner).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
AIGATEWAY_BATCH_SWEEP_SECONDS = env_float("AIGATEWAY_BATCH_SWEEP_SECONDS", 30.0)
CELERY_BEAT_SCHEDULE = {
    "credentials-housekeeping": {
        "task": "providers.credentials_housekeeping",
        "schedule": env_float("AIGATEWAY_HOUSEKEEPING_SECONDS", 300.0),
    },
    "probe-deployments": {
        "task": "routing.probe_deployments",
        "schedule": env_float("AIGATEWAY_PROBE_SECONDS", 60.0),
    },
    "batches-sweep": {
        "task": "batches.sweep",
        "schedule": AIGATEWAY_BATCH_SWEEP_SECONDS,
    },
    "audit-retention": {
        "task": "audit.retention_purge",
        "schedule": env_float("AIGATEWAY_AUDIT_PURGE_SECONDS", 3600.0),
    },
}

# Upstream HTTP behaviour (adapters). Retries are owned by the resilience layer, never the SDK.
AIGATEWAY_UPSTREAM_CONNECT_TIMEOUT = env_float("AIGATEWAY_UPSTREAM_CONNECT_TIMEOUT", 5.0)
AIGATEWAY_UPSTREAM_READ_TIMEOUT = env_float("AIGATEWAY_UPSTREAM_READ_TIMEOUT", 120.0)
# Open connections per upstream pool (provider and credential) and worker process for the lean
# OpenAI chat client; 0 = no cap. aiohttp's default of 100 would queue a busy worker's calls.
AIGATEWAY_UPSTREAM_MAX_CONNECTIONS = env_int("AIGATEWAY_UPSTREAM_MAX_CONNECTIONS", 1000)
# How long an authenticated key / route table may be served from the in-process cache before
# the shared config version is checked again (bounds how fast a revocation reaches all workers).
AIGATEWAY_CONFIG_CACHE_SECONDS = env_float("AIGATEWAY_CONFIG_CACHE_SECONDS", 1.0)
# Circuit breaker per deployment (state shared through Redis when REDIS_URL is set).
AIGATEWAY_BREAKER_FAILURES = env_int("AIGATEWAY_BREAKER_FAILURES", 5)  # consecutive
AIGATEWAY_BREAKER_FAILURE_RATE = env_float("AIGATEWAY_BREAKER_FAILURE_RATE", 0.5)
AIGATEWAY_BREAKER_MIN_REQUESTS = env_int("AIGATEWAY_BREAKER_MIN_REQUESTS", 20)
AIGATEWAY_BREAKER_WINDOW_SECONDS = env_float("AIGATEWAY_BREAKER_WINDOW_SECONDS", 60.0)
AIGATEWAY_BREAKER_RECOVERY_SECONDS = env_float("AIGATEWAY_BREAKER_RECOVERY_SECONDS", 30.0)
AIGATEWAY_BREAKER_PROBE_TIMEOUT_SECONDS = env_float("AIGATEWAY_BREAKER_PROBE_TIMEOUT_SECONDS", 30.0)
# How long a process trusts a closed breaker it read from Redis, and holds back successes
# before writing them (aigateway/gateway/breaker_sync.py). 0: ask and write on every call.
AIGATEWAY_BREAKER_SYNC_SECONDS = env_float("AIGATEWAY_BREAKER_SYNC_SECONDS", 0.5)
# Rate limits when Redis cannot be reached: "open" keeps serving with a per-process limiter
# (logged as an alert), "closed" rejects calls with 503 until Redis is back.
AIGATEWAY_LIMITS_REDIS_FAILURE = env_str("AIGATEWAY_LIMITS_REDIS_FAILURE", "open")
if AIGATEWAY_LIMITS_REDIS_FAILURE not in {"open", "closed"}:
    raise ImproperlyConfigured("AIGATEWAY_LIMITS_REDIS_FAILURE must be 'open' or 'closed'")
# /metrics: a bearer token, or (when unset) only these client addresses.
AIGATEWAY_METRICS_TOKEN = env_str("AIGATEWAY_METRICS_TOKEN", "")
AIGATEWAY_METRICS_ALLOWED_IPS = env_list("AIGATEWAY_METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
# OpenTelemetry traces of gateway calls (docs/observability.md): off by default; the exporter
# reads the standard OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME.
AIGATEWAY_OTEL_ENABLED = env_bool("AIGATEWAY_OTEL_ENABLED", False)
# More text to mask where prompts are logged (teams with log_prompts): a JSON list of regular
# expressions, e.g. ["EMP-[0-9]{6}"], on top of e-mails, card numbers, keys and tokens.
AIGATEWAY_REDACT_PATTERNS = env_regex_list("AIGATEWAY_REDACT_PATTERNS")
# Response cache: entries kept in process at most (Redis: its own maxmemory policy evicts).
AIGATEWAY_CACHE_MAX_ENTRIES = env_int("AIGATEWAY_CACHE_MAX_ENTRIES", 10_000)
# Semantic cache: entries kept per namespace (tenant + route + conversation context).
AIGATEWAY_SEMANTIC_MAX_ENTRIES = env_int("AIGATEWAY_SEMANTIC_MAX_ENTRIES", 10_000)
# Batch API (docs/api.md, "Batches"): upload limit, requests per file, items in flight per
# running batch, how long a run may go without renewing its lease before another resumes
# the batch, and how long one task works before handing over to a fresh one.
AIGATEWAY_BATCH_FILE_MAX_BYTES = env_int("AIGATEWAY_BATCH_FILE_MAX_BYTES", 50 * 1024 * 1024)
AIGATEWAY_BATCH_MAX_REQUESTS = env_int("AIGATEWAY_BATCH_MAX_REQUESTS", 50_000)
AIGATEWAY_BATCH_CONCURRENCY = env_int("AIGATEWAY_BATCH_CONCURRENCY", 8)
AIGATEWAY_BATCH_LEASE_SECONDS = env_float("AIGATEWAY_BATCH_LEASE_SECONDS", 60.0)
AIGATEWAY_BATCH_SLICE_SECONDS = env_float("AIGATEWAY_BATCH_SLICE_SECONDS", 120.0)
# Without a broker (eager Celery, `make run`): run batches in a background thread of the
# process, so POST /v1/batches returns at once (false: inside the call, as the tests want).
AIGATEWAY_BATCH_EAGER_BACKGROUND = env_bool("AIGATEWAY_BATCH_EAGER_BACKGROUND", True)
# Usage records are buffered and written in batches off the request path.
AIGATEWAY_USAGE_FLUSH_SECONDS = env_float("AIGATEWAY_USAGE_FLUSH_SECONDS", 1.0)
AIGATEWAY_USAGE_FLUSH_BATCH = env_int("AIGATEWAY_USAGE_FLUSH_BATCH", 500)
# API-call audit entries likewise (aigateway/audit/writer.py); each batch is one transaction
# on the audit chain head.
AIGATEWAY_AUDIT_FLUSH_SECONDS = env_float("AIGATEWAY_AUDIT_FLUSH_SECONDS", 1.0)
AIGATEWAY_AUDIT_FLUSH_BATCH = env_int("AIGATEWAY_AUDIT_FLUSH_BATCH", 500)
# Retention of audit events that belong to no organisation (sign-ins, system events, purge
# records); an organisation's own events follow Organisation.audit_retention_days. 0: forever.
AIGATEWAY_AUDIT_RETENTION_DAYS = env_int("AIGATEWAY_AUDIT_RETENTION_DAYS", 365)

# Single sign-on (docs/sso.md). The SP entity id and ACS URL of an organisation are built from
# this base URL, never from the request's Host: <base>/accounts/saml/<org-slug>/metadata/.
AIGATEWAY_SAML_SP_BASE_URL = env_str("AIGATEWAY_SAML_SP_BASE_URL", "http://127.0.0.1:8000")
# How long a seen assertion/response id is refused again (longer than any assertion lives).
AIGATEWAY_SAML_REPLAY_SECONDS = env_int("AIGATEWAY_SAML_REPLAY_SECONDS", 24 * 3600)
AIGATEWAY_SAML_METADATA_TIMEOUT = env_float("AIGATEWAY_SAML_METADATA_TIMEOUT", 10.0)
# Optional SP key pair (PEM; use the _FILE variants): signs AuthnRequests and logout messages
# and is published in the SP metadata. Some IdPs (Okta SLO) require signed logout requests.
AIGATEWAY_SAML_SP_PRIVATE_KEY = env_str("AIGATEWAY_SAML_SP_PRIVATE_KEY", "")
AIGATEWAY_SAML_SP_CERTIFICATE = env_str("AIGATEWAY_SAML_SP_CERTIFICATE", "")
# ModelBackend plus sign-in throttling (auth/login_throttle.py).
AUTHENTICATION_BACKENDS = ["auth.login_throttle.ThrottledModelBackend"]
ACCOUNT_ADAPTER = "auth.sso.adapter.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "auth.sso.adapter.SocialAccountAdapter"
# Our provider subclass: explicit SP entity id/ACS, strict settings, extra checks, replay cache.
SOCIALACCOUNT_PROVIDERS = {"saml": {"provider_class": "auth.sso.provider.GatewaySAMLProvider"}}
SOCIALACCOUNT_AUTO_SIGNUP = True  # JIT: accounts are made from the assertion, no signup form
SOCIALACCOUNT_LOGIN_ON_GET = False  # GET .../login/ shows a confirm form (no login CSRF)
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # never attach an IdP login to a local account
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_STORE_TOKENS = False
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = False  # two IdPs may assert one address: two separate accounts
# Browser sessions (dashboard, SSO) end after this long; an IdP's SessionNotOnOrAfter may
# shorten an SSO session further.
SESSION_COOKIE_AGE = env_int("AIGATEWAY_SESSION_SECONDS", 8 * 3600)
# Behind a TLS-terminating proxy (docs/sso.md): SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO
# makes Django see https, so SAML's destination check and secure cookies work.
if env_str("SECURE_PROXY_SSL_HEADER", ""):
    SECURE_PROXY_SSL_HEADER = (env_str("SECURE_PROXY_SSL_HEADER"), "https")
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)

# Browser-facing security headers (docs/configuration.md, "Web security"). Pages carry no
# inline script, style or event handler (static/js only; htmx told not to inject its
# indicator style nor to eval, templates/base.html), so the policy needs no 'unsafe-inline'.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],  # Swagger UI's (/api/docs) icons are data: URIs
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    # SSO pages add their IdP's origin where a form's redirect goes there (auth/sso/csp.py).
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HSTS is only ever sent on requests Django sees as https (direct TLS, or a proxy's
# SECURE_PROXY_SSL_HEADER above), so the default does nothing on plain http. 0 turns it off.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes speak plain http
# Cookies: Secure as soon as the gateway is reached over https (a https trusted origin or SP
# URL, or a TLS proxy header), unless set explicitly; never readable by scripts (htmx sends
# the CSRF token from the page, templates/base.html); SameSite=Lax (the IdP's cross-site POST
# to the ACS needs no session cookie: allauth stores it and redirects to a same-site GET).
_SERVED_OVER_HTTPS = (
    any(origin.startswith("https://") for origin in CSRF_TRUSTED_ORIGINS)
    or AIGATEWAY_SAML_SP_BASE_URL.startswith("https://")
    or bool(env_str("SECURE_PROXY_SSL_HEADER", ""))
)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _SERVED_OVER_HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _SERVED_OVER_HTTPS)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Password sign-in throttling (auth/login_throttle.py): failures per username and per client
# address within the window; past either, sign-in is refused (right password too) until the
# window since the last counted failure has passed.
AIGATEWAY_LOGIN_MAX_FAILURES = env_int("AIGATEWAY_LOGIN_MAX_FAILURES", 5)
AIGATEWAY_LOGIN_IP_MAX_FAILURES = env_int("AIGATEWAY_LOGIN_IP_MAX_FAILURES", 20)
AIGATEWAY_LOGIN_LOCKOUT_SECONDS = env_int("AIGATEWAY_LOGIN_LOCKOUT_SECONDS", 900)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "plain")  # "json" in production: one JSON object per line
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "aigateway.observability.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            # Lines written in batches (LOG_FLUSH_SECONDS, 0.2 s): one system call per line
            # was a measurable share of each request (aigateway/observability/log_handler.py).
            "class": "aigateway.observability.log_handler.BatchingStreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # The SDKs' HTTP client logs every upstream call at INFO: our request line already
        # says it, and the extra line cost CPU per call.
        "httpx2": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}


def _refuse_insecure_production() -> None:
    """With DEBUG off we are in production: refuse the well-known development secrets.

    ``AIGATEWAY_ALLOW_INSECURE_DEFAULTS=true`` is for ``make run``/tests only and says so.
    """
    if DEBUG or env_bool("AIGATEWAY_ALLOW_INSECURE_DEFAULTS", False):
        return
    if "pytest" in sys.modules:  # the test suite runs with dev keys on purpose
        return
    problems = []
    if SECRET_KEY == INSECURE_SECRET_KEY:
        problems.append("SECRET_KEY (a long random string)")
    if INSECURE_ENCRYPTION_KEY in AIGATEWAY_ENCRYPTION_KEYS:
        problems.append(
            "AIGATEWAY_ENCRYPTION_KEYS (generate one with: python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        )
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start in production (DEBUG is off) with development defaults. Set "
            + " and ".join(problems)
            + ". For a local trial set AIGATEWAY_ALLOW_INSECURE_DEFAULTS=true (make run does)."
        )


_refuse_insecure_production()

"""Prometheus metrics endpoint (text exposition format 0.0.4).

Two kinds of metrics. Per-request counters and histograms (aigateway/observability/
instruments.py) are kept by each process, and summed over every worker process when
PROMETHEUS_MULTIPROC_DIR is set. State that lives in Redis or the database (breakers,
overdue credentials, quota alerts, Celery queue depth) is read at scrape time, so every
process reports the same values and needs no aggregation. Access: a bearer token
(AIGATEWAY_METRICS_TOKEN) or, when none is set, only from the addresses in
AIGATEWAY_METRICS_ALLOWED_IPS (loopback by default). See docs/observability.md.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from aigateway.observability.instruments import exposition
from aigateway.routing.services import breakers_list

BREAKER_STATES = ("closed", "open", "half_open", "forced_open", "forced_closed")


def _allowed(request: HttpRequest) -> bool:
    token = settings.AIGATEWAY_METRICS_TOKEN
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(supplied.encode(), token.encode())
    return request.META.get("REMOTE_ADDR", "") in settings.AIGATEWAY_METRICS_ALLOWED_IPS


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def render_metrics() -> str:
    from aigateway.quotas.models import QuotaAlert
    from aigateway.routing.models import BreakerEvent
    from providers.models import Credential, CredentialStatus

    lines = [
        "# HELP aigateway_breaker_state Circuit breaker state per deployment (1 = current).",
        "# TYPE aigateway_breaker_state gauge",
    ]
    for row in breakers_list():
        d = row.deployment
        base = (
            f'deployment="{d.pk}",route="{_label(d.route.name)}",'
            f'provider="{_label(d.provider.name)}",model="{_label(d.upstream_model)}"'
        )
        for state in BREAKER_STATES:
            value = 1 if row.breaker.state == state else 0
            lines.append(f'aigateway_breaker_state{{{base},state="{state}"}} {value}')
    lines += [
        "# HELP aigateway_breaker_transitions_total Breaker transitions recorded, by target state.",
        "# TYPE aigateway_breaker_transitions_total counter",
    ]
    counts = BreakerEvent.objects.values("deployment_id", "to_state").annotate(n=Count("id"))
    for count in counts.order_by("deployment_id", "to_state"):
        lines.append(
            f'aigateway_breaker_transitions_total{{deployment="{count["deployment_id"]}",'
            f'to_state="{_label(count["to_state"])}"}} {count["n"]}'
        )
    overdue = Credential.objects.filter(
        status=CredentialStatus.ACTIVE, rotation_due_at__lt=timezone.now()
    ).count()
    open_alerts = QuotaAlert.objects.filter(acknowledged_at__isnull=True).count()
    lines += [
        "# HELP aigateway_credentials_rotation_overdue Credentials past their rotation date.",
        "# TYPE aigateway_credentials_rotation_overdue gauge",
        f"aigateway_credentials_rotation_overdue {overdue}",
        "# HELP aigateway_quota_alerts_open Quota soft-threshold alerts not yet acknowledged.",
        "# TYPE aigateway_quota_alerts_open gauge",
        f"aigateway_quota_alerts_open {open_alerts}",
    ]
    return "\n".join(lines) + "\n"


def _redis_lines() -> list[str]:
    """Whether Redis answers, and what the rate limiter does when it does not: operators see
    a degraded limiter in metrics, not only in logs."""
    from aigateway.core.redis import get_sync_redis

    client = get_sync_redis()
    up = 1
    if client is None:
        up = 0
    else:
        try:
            client.ping()
        except Exception:  # noqa: BLE001 - reported as down
            up = 0
    mode = settings.AIGATEWAY_LIMITS_REDIS_FAILURE
    return [
        "# HELP aigateway_redis_up Whether Redis (shared limits, breakers, caches) answers.",
        "# TYPE aigateway_redis_up gauge",
        f"aigateway_redis_up {up}",
        "# HELP aigateway_rate_limiter_degraded 1 when limits fall back to per-process "
        "(Redis down, fail open) or reject (fail closed).",
        "# TYPE aigateway_rate_limiter_degraded gauge",
        f'aigateway_rate_limiter_degraded{{redis_failure="{mode}"}} '
        f"{0 if up or not settings.REDIS_URL else 1}",
    ]


# kombu's Redis transport keeps a queue's messages in one list per priority step.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def celery_queues() -> list[str]:
    names = {getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")}
    for route in (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).values():
        if isinstance(route, dict) and route.get("queue"):
            names.add(route["queue"])
    return sorted(names)


def _queue_lines() -> list[str]:
    """Tasks waiting in each Celery queue (LLEN on the Redis broker). Absent when tasks run
    eagerly (no broker) or the broker is not Redis; on a broker error, absent too (the
    broker check of /readyz says so)."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return []
    import redis

    queues = celery_queues()
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(queue + suffix)
            lengths = pipe.execute()
    except Exception:  # noqa: BLE001 - reported by absence; /readyz names the broker
        return []
    finally:
        client.close()
    steps = len(_PRIORITY_SUFFIXES)
    lines = [
        "# HELP aigateway_celery_queue_depth Tasks waiting in a Celery queue (broker LLEN).",
        "# TYPE aigateway_celery_queue_depth gauge",
    ]
    for index, queue in enumerate(queues):
        depth = sum(lengths[index * steps : (index + 1) * steps])
        lines.append(f'aigateway_celery_queue_depth{{queue="{_label(queue)}"}} {depth}')
    return lines


def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    scraped = render_metrics() + "\n".join(_redis_lines() + _queue_lines()) + "\n"
    body = scraped + exposition().decode()
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")

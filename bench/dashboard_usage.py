"""How fast the overview's usage charts and the Usage page stay with many recorded calls.

    .venv/bin/python -m bench.dashboard_usage [--rows 1000000] [--repeat 5]

Fills a database with ``--rows`` synthetic usage records over the last 30 days (kept between
runs) for two organisations (90 % / 10 %), four teams and 200 users, then times, as a platform
admin of the big organisation and as one of its members: the overview's series for the last
hour, day and 30 days (``usage_timeseries``: one aggregate query), and the Usage page (whole
page: totals per day and per team, the first page of calls) through Django's test client.

Database: DATABASE_URL if set (PostgreSQL: use a throwaway database), else a SQLite file in
/tmp.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aigateway.settings")
os.environ.setdefault("AIGATEWAY_ALLOW_INSECURE_DEFAULTS", "true")
os.environ.setdefault("DATABASE_URL", "sqlite:////tmp/aigateway-usage-bench.sqlite3")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from aigateway.usage.models import UsageRecord  # noqa: E402
from aigateway.usage.timeseries import usage_timeseries  # noqa: E402
from auth.models import Organisation, OrgMembership, OrgRole, Team, TeamMembership  # noqa: E402

BATCH = 20_000


def populate(rows: int) -> tuple[Any, Any]:
    User = get_user_model()
    big, _ = Organisation.objects.get_or_create(slug="usage-big", defaults={"name": "Big"})
    small, _ = Organisation.objects.get_or_create(slug="usage-small", defaults={"name": "Small"})
    teams = [
        Team.objects.get_or_create(organisation=big if i < 3 else small, slug=f"t{i}",
                                   defaults={"name": f"T{i}"})[0]
        for i in range(4)
    ]  # fmt: skip
    users = [User.objects.get_or_create(username=f"usage-user{i}")[0] for i in range(200)]
    for i, user in enumerate(users):
        TeamMembership.objects.get_or_create(user=user, team=teams[i % 4])
    admin, _ = User.objects.get_or_create(username="usage-admin")
    OrgMembership.objects.get_or_create(user=admin, organisation=big,
                                        defaults={"role": OrgRole.PLATFORM_ADMIN})  # fmt: skip
    have = UsageRecord.objects.count()
    now = timezone.now()
    step = timedelta(days=30) / max(rows, 1)
    while have < rows:
        n = min(BATCH, rows - have)
        batch = []
        for i in range(have, have + n):
            team = teams[i % 4] if i % 10 else teams[3]
            batch.append(
                UsageRecord(
                    request_id=f"bench-{i}", created_at=now - step * i, source="api",
                    organisation_id=team.organisation_id, team_id=team.pk,
                    user_id=users[i % 200].pk, route=("smart", "fast")[i % 2],
                    provider=("openai", "anthropic")[i % 2], status_code=500 if i % 37 == 0
                    else 200, input_tokens=100 + i % 900, output_tokens=50 + i % 300,
                    cost_usd=Decimal("0.0012"), latency_ms=float(20 + (i * 7919) % 3000),
                    cache_status="HIT" if i % 5 == 0 else "MISS",
                )
            )  # fmt: skip
        UsageRecord.objects.bulk_create(batch, batch_size=2000)
        have += n
        print(f"  … {have:,} calls", file=sys.stderr)
    if connection.vendor == "postgresql":  # what autovacuum does after a bulk load
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE usage_usagerecord")
    return admin, users[0]


def median_ms(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    admin, member = populate(args.rows)
    print(f"{UsageRecord.objects.count():,} usage records ({connection.vendor}); "
          f"setup {time.perf_counter() - started:.1f} s")  # fmt: skip
    team_id = Team.objects.get(organisation__slug="usage-big", slug="t0").pk
    week = (timezone.now() - timedelta(days=6)).date().isoformat()
    print(f"\n{'what':52} {'median ms':>10}")
    for who, user in (("platform admin", admin), ("member", member)):
        for period in ("hour", "day", "month"):
            ms = median_ms(partial(usage_timeseries, user=user, period=period), args.repeat)
            print(f"{f'{who}, overview series, {period}':52} {ms:10.1f}")
        client = Client()
        client.force_login(user)
        pages = [
            ("Usage page, 30 days", "/usage/"),
            ("Usage page, one team, 7 days", f"/usage/?team={team_id}&start={week}"),
        ]
        for label, url in pages:
            ms = median_ms(partial(client.get, url), args.repeat)
            print(f"{f'{who}, {label}':52} {ms:10.1f}")


if __name__ == "__main__":
    main()

"""Budget periods: the organisation's local day or month, its name and the time until it ends.

The name becomes part of the limiter key, so a budget used up on one local day is fresh on
the next without anyone resetting it; seconds_left is the Retry-After of a refused call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aigateway.gateway import limits
from aigateway.quotas.checks import COUNTER, Period, budget_period
from aigateway.quotas.limiter import Adjustment, InProcessLimiter
from aigateway.quotas.rules import Demand, Rule, check_for

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
HOUR, DAY = 3600.0, 86_400.0


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def local(tz: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(tz))  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kind", "tz", "now", "expected"),
    [
        # an ordinary afternoon: Berlin is UTC+1 in November, New York UTC-5
        ("tokens_day", BERLIN, utc(2026, 11, 25, 12), Period("2026-11-25", 11 * HOUR)),
        ("tokens_day", NEW_YORK, utc(2026, 11, 25, 12), Period("2026-11-25", 17 * HOUR)),
        ("tokens_day", "UTC", utc(2026, 11, 25, 12), Period("2026-11-25", 12 * HOUR)),
        ("cost_day", BERLIN, utc(2026, 11, 25, 12), Period("2026-11-25", 11 * HOUR)),
        ("cost_month", BERLIN, utc(2026, 11, 25, 12), Period("2026-11", 5 * DAY + 11 * HOUR)),
        ("cost_month", NEW_YORK, utc(2026, 11, 25, 12), Period("2026-11", 5 * DAY + 17 * HOUR)),
        ("tokens_month", "UTC", utc(2026, 11, 25, 12), Period("2026-11", 5 * DAY + 12 * HOUR)),
        # one second before local midnight
        ("tokens_day", BERLIN, local(BERLIN, 2026, 11, 25, 23, 59, 59), Period("2026-11-25", 1)),
        (
            "tokens_day",
            NEW_YORK,
            local(NEW_YORK, 2026, 11, 25, 23, 59, 59),
            Period("2026-11-25", 1),
        ),
        ("tokens_day", "UTC", utc(2026, 11, 25, 23, 59, 59), Period("2026-11-25", 1)),
        ("cost_month", BERLIN, local(BERLIN, 2026, 11, 30, 23, 59, 59), Period("2026-11", 1)),
        # the same instant is a different day in different zones
        ("tokens_day", BERLIN, utc(2026, 11, 25, 23, 30), Period("2026-11-26", 23.5 * HOUR)),
        ("tokens_day", NEW_YORK, utc(2026, 11, 25, 23, 30), Period("2026-11-25", 5.5 * HOUR)),
        ("tokens_day", NEW_YORK, utc(2026, 11, 26, 4, 30), Period("2026-11-25", 0.5 * HOUR)),
        # spring forward: the local day has 23 hours, the month one hour less
        ("tokens_day", BERLIN, local(BERLIN, 2026, 3, 29), Period("2026-03-29", 23 * HOUR)),
        ("tokens_day", BERLIN, local(BERLIN, 2026, 3, 29, 3), Period("2026-03-29", 21 * HOUR)),
        ("tokens_day", NEW_YORK, local(NEW_YORK, 2026, 3, 8), Period("2026-03-08", 23 * HOUR)),
        ("cost_month", BERLIN, local(BERLIN, 2026, 3, 1), Period("2026-03", 31 * DAY - HOUR)),
        ("cost_month", NEW_YORK, local(NEW_YORK, 2026, 3, 1), Period("2026-03", 31 * DAY - HOUR)),
        ("tokens_day", "UTC", utc(2026, 3, 29), Period("2026-03-29", DAY)),
        # fall back: 25 hours
        ("tokens_day", BERLIN, local(BERLIN, 2026, 10, 25), Period("2026-10-25", 25 * HOUR)),
        ("tokens_day", NEW_YORK, local(NEW_YORK, 2026, 11, 1), Period("2026-11-01", 25 * HOUR)),
        ("cost_month", BERLIN, local(BERLIN, 2026, 10, 1), Period("2026-10", 31 * DAY + HOUR)),
        # month rollover: January 31st, then February (28 days in 2026), then a new year
        ("cost_month", BERLIN, local(BERLIN, 2026, 1, 31, 23, 59, 59), Period("2026-01", 1)),
        ("cost_month", BERLIN, local(BERLIN, 2026, 2, 1), Period("2026-02", 28 * DAY)),
        ("cost_month", BERLIN, utc(2026, 1, 31, 23), Period("2026-02", 28 * DAY)),
        ("cost_month", NEW_YORK, utc(2026, 1, 31, 23), Period("2026-01", 6 * HOUR)),
        ("cost_month", "UTC", utc(2026, 1, 31, 23), Period("2026-01", HOUR)),
        ("tokens_month", "UTC", utc(2026, 2, 1), Period("2026-02", 28 * DAY)),
        ("cost_month", NEW_YORK, local(NEW_YORK, 2026, 12, 31, 23), Period("2026-12", HOUR)),
        ("cost_month", BERLIN, utc(2026, 12, 31, 23), Period("2027-01", 31 * DAY)),
        ("tokens_month", "UTC", utc(2028, 2, 1), Period("2028-02", 29 * DAY)),  # leap year
    ],
)
def test_budget_periods(kind, tz, now, expected):
    assert budget_period(kind, tz_name=tz, now=now) == expected


def test_the_result_does_not_depend_on_the_zone_now_is_given_in():
    instant = utc(2026, 3, 29, 0, 30)
    for same in (instant, instant.astimezone(ZoneInfo(BERLIN)),
                 instant.astimezone(ZoneInfo("Asia/Tokyo"))):  # fmt: skip
        assert budget_period("tokens_day", tz_name=BERLIN, now=same) == Period(
            "2026-03-29", 21.5 * HOUR
        )


def test_seconds_left_is_never_below_one():
    almost = local(BERLIN, 2026, 11, 25, 23, 59, 59) + timedelta(microseconds=999_999)
    assert budget_period("tokens_day", tz_name=BERLIN, now=almost) == Period("2026-11-25", 1.0)


@pytest.mark.parametrize("bad", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime",
                                 "Europe/berlin", "zone.tab"])  # fmt: skip
def test_an_invalid_time_zone_falls_back_to_utc(bad):
    now = utc(2026, 11, 25, 23, 30)
    assert budget_period("tokens_day", tz_name=bad, now=now) == Period("2026-11-25", 0.5 * HOUR)
    assert budget_period("cost_month", tz_name=bad, now=now) == Period(
        "2026-11", 5 * DAY + 0.5 * HOUR
    )


# -- through the limiter --------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _fresh_local_limiter(monkeypatch) -> None:
    monkeypatch.setattr(limits, "_local", InProcessLimiter())


def _day_budget(org_id: int = 1) -> Rule:
    return Rule(limit_id=1, scope="org", scope_id=org_id, kind="tokens_day", value=100,
                burst=None, soft_percent=80)  # fmt: skip


async def test_a_day_budget_used_up_today_is_fresh_after_local_midnight(backend):
    limiter = limits._limiter()
    demand = Demand(prompt_tokens=100, total_tokens=100, lease_id="x")
    last_second = utc(2026, 3, 28, 22, 59, 59)  # 23:59:59 in Berlin, 18:59:59 in New York
    midnight = last_second + timedelta(seconds=1)  # Berlin's (23-hour) March 29th begins

    today = check_for(_day_budget(), demand, tz_name=BERLIN, now=last_second)
    assert today.type == COUNTER and today.key == "aigw:q:org:1:tokens_day:2026-03-28"
    assert today.ttl == 1
    assert (await limiter.take([today], last_second.timestamp())).allowed
    refused = await limiter.take([today], last_second.timestamp())
    assert (refused.allowed, refused.retry_after) == (False, 1)  # fresh in a second

    tomorrow = check_for(_day_budget(), demand, tz_name=BERLIN, now=midnight)
    assert tomorrow.key == "aigw:q:org:1:tokens_day:2026-03-29"
    verdict = await limiter.take([tomorrow], midnight.timestamp())
    assert verdict.allowed and verdict.results[0].reset_seconds == 23 * HOUR

    # An organisation in New York is still on March 28th: its own budget, used up there.
    ny_today = check_for(_day_budget(2), demand, tz_name=NEW_YORK, now=last_second)
    assert (await limiter.take([ny_today], last_second.timestamp())).allowed
    ny_later = check_for(_day_budget(2), demand, tz_name=NEW_YORK, now=midnight)
    assert ny_later.key == ny_today.key == "aigw:q:org:2:tokens_day:2026-03-28"
    refused = await limiter.take([ny_later], midnight.timestamp())
    assert (refused.allowed, refused.retry_after) == (False, 5 * HOUR)


async def test_a_month_budget_rolls_over_on_the_first(backend):
    limiter = limits._limiter()
    rule = Rule(limit_id=2, scope="team", scope_id=3, kind="cost_month", value=5.0, burst=None,
                soft_percent=80)  # fmt: skip
    demand = Demand(prompt_tokens=10, total_tokens=10, lease_id="x")
    january = utc(2026, 1, 31, 22, 59, 59)  # Jan 31st, 23:59:59 in Berlin
    spent = check_for(rule, demand, tz_name=BERLIN, now=january)
    assert (spent.key, spent.cost) == ("aigw:q:team:3:cost_month:2026-01", 0.0)
    assert (await limiter.take([spent], january.timestamp())).allowed
    await limiter.settle([Adjustment(spent, 7.5)], january.timestamp())  # over budget
    assert (await limiter.take([spent], january.timestamp())).allowed is False

    february = january + timedelta(seconds=1)
    fresh = check_for(rule, demand, tz_name=BERLIN, now=february)
    assert fresh.key.endswith(":2026-02") and fresh.ttl == 28 * DAY
    verdict = await limiter.take([fresh], february.timestamp())
    assert verdict.allowed and verdict.results[0].remaining == 5.0

"""Run the reliability drills: ``python -m bench.reliability`` (``make reliability``).

    python -m bench.reliability [--only faults,redis,postgres] [--redis-outage 30]
        [--pg-outage 20] [--fault-seconds 3] [--heal-seconds 3.5] [--rate 20]
        [--limits-redis-failure open|closed]

Starts one stack (bench/reliability/stack.py: fake upstreams, a private PostgreSQL and Redis,
the gateway under uvicorn with 2 workers), runs the drills in turn against it, prints each
drill's report and exits non-zero if any check failed. Takes about 3 minutes with the
defaults. Everything it starts it also stops, on failure too.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.reliability import faults, pg_outage, redis_outage
from bench.reliability.report import DrillReport
from bench.reliability.stack import Stack

DRILLS = ("faults", "redis", "postgres")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DRILLS), help="comma-separated drills")
    parser.add_argument("--redis-outage", type=float, default=30.0, help="seconds")
    parser.add_argument("--pg-outage", type=float, default=20.0, help="seconds")
    parser.add_argument("--fault-seconds", type=float, default=3.0)
    parser.add_argument("--heal-seconds", type=float, default=3.5)
    parser.add_argument("--rate", type=float, default=20.0, help="load, requests per second")
    parser.add_argument("--limits-redis-failure", choices=("open", "closed"), default="open")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(DRILLS)
    if unknown:
        parser.error(f"unknown drill(s) {sorted(unknown)}; choose from {DRILLS}")

    started = time.monotonic()
    reports: list[DrillReport] = []
    with Stack(limits_redis_failure=args.limits_redis_failure) as stack:
        print(
            f"stack up in {time.monotonic() - started:.0f} s: gateway {stack.base_url} "
            f"(workers {sorted(stack.gateway.worker_pids())}), PostgreSQL :{stack.postgres.port},"  # type: ignore[union-attr]
            f" Redis :{stack.redis.port}",
            flush=True,
        )
        if "faults" in chosen:
            config = faults.FaultsConfig(
                fault_seconds=args.fault_seconds, heal_seconds=args.heal_seconds, rate=args.rate
            )
            reports.append(faults.run(stack, config))
            print(reports[-1].summary() + "\n", flush=True)
        if "redis" in chosen:
            redis_config = redis_outage.RedisOutageConfig(
                outage_seconds=args.redis_outage, rate=args.rate
            )
            reports.append(redis_outage.run(stack, redis_config))
            print(reports[-1].summary() + "\n", flush=True)
        if "postgres" in chosen:
            pg_config = pg_outage.PostgresOutageConfig(
                outage_seconds=args.pg_outage, rate=args.rate
            )
            reports.append(pg_outage.run(stack, pg_config))
            print(reports[-1].summary() + "\n", flush=True)
        code = stack.gateway.stop()  # type: ignore[union-attr]
        passed = all(report.passed for report in reports)
        stack.keep_workdir = not passed
        print(f"gateway stopped (exit {code})" + ("" if passed else f"; kept {stack.workdir}"))
    print(
        f"reliability drills: {'PASS' if passed else 'FAIL'} in {time.monotonic() - started:.0f} s"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

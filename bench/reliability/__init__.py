"""Reliability drills (issue "Faults"): upstream faults, a Redis outage and a PostgreSQL
restart under load from a second process. Run them all with ``make reliability`` or
``python -m bench.reliability``; see docs/reliability.md."""

"""The soak (issue "Load and soak"): steady load with rate limits, caching and audit on.

    python -m bench.soak --minutes 10          # or: make soak SOAK_ARGS="--minutes 10"

See bench/soak/run.py; writes docs/soak.csv and docs/soak.svg and prints a summary.
"""

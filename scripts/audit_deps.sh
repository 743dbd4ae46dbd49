#!/usr/bin/env bash
# Known vulnerabilities in the locked dependencies: pip-audit (in a venv of its own, so it
# never enters the project's lock) over requirements*.txt, against PyPI's advisory data.
#
# pip-audit reads PyPI's per-version JSON API (https://pypi.org/pypi/<name>/<version>/json)
# or api.osv.dev. Where neither answers (the build machines of 2026-11 reach PyPI's index and
# project pages only), pip-audit would skip every package and still report "No known
# vulnerabilities found": a false green. So reachability is probed first, and without it
# this prints BLOCKED and audits nothing (exit 0, or 1 with AUDIT_DEPS_REQUIRED=1).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
PROBE="https://pypi.org/pypi/pip/24.0/json"

if ! "$PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)" \
    "$PROBE" >/dev/null 2>&1; then
  echo "audit-deps: BLOCKED: PyPI's per-version JSON API ($PROBE) does not answer from this" \
    "machine and pip-audit needs it (or api.osv.dev); no dependency was audited." >&2
  exit "${AUDIT_DEPS_REQUIRED:-0}"
fi

VENV=var/audit-venv
[ -x "$VENV/bin/pip-audit" ] || {
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q "pip-audit==2.10.1"
}
# --strict: a package that cannot be audited fails the run instead of being skipped.
"$VENV/bin/pip-audit" --strict --no-deps --disable-pip \
  -r requirements.txt -r requirements-dev.txt -r requirements-nodeps.txt

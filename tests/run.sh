#!/usr/bin/env bash
# Install everything the tests need on a fresh machine of this kind, then run every test:
# lint, unit and integration tests (SQLite, and PostgreSQL when reachable), then the Playwright
# end-to-end journeys in Debian's chromium. Any failure (pytest's "no tests" exit 5 included) fails.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian's chromium"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "== installing Python packages"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== installing npm packages used by the browser tests"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)

if [ -z "${PORTICO_TEST_POSTGRES_URL+set}" ] \
  && .venv/bin/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then
  export PORTICO_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres
fi
echo "== PostgreSQL tests: ${PORTICO_TEST_POSTGRES_URL:-skipped (PORTICO_TEST_POSTGRES_URL not set)}"

if [ -z "${PORTICO_TEST_REDIS_URL+set}" ] \
  && .venv/bin/python -c "import socket; socket.create_connection(('127.0.0.1', 6379), 1)" 2>/dev/null; then
  export PORTICO_TEST_REDIS_URL=redis://127.0.0.1:6379/0
fi
echo "== Redis tests: ${PORTICO_TEST_REDIS_URL:-skipped (nothing answers on 127.0.0.1:6379)}"

# Two test processes (CI has 2 cores): most tests wait on servers, browsers and databases, so two
# processes halve the wall time. Each has its own databases, ports, Redis prefix and browser.
WORKERS="${PORTICO_TEST_WORKERS:-2}"

echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== unit and integration tests"
.venv/bin/pytest tests -n "$WORKERS" "$@"

echo "== end-to-end tests (Playwright, JavaScript on and off)"
.venv/bin/pytest e2e -n "$WORKERS" "$@"

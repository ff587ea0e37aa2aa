#!/usr/bin/env bash
# `make test`: lint, then the whole suite twice: on SQLite and on PostgreSQL.
# Without a PostgreSQL server the second pass is skipped loudly; under CI it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BIN=$(dirname "$PY")
export PG_TEST_URL=${PG_TEST_URL:-postgres://postgres@127.0.0.1:5432/test}
export REDIS_TEST_URL=${REDIS_TEST_URL:-redis://127.0.0.1:6379/15}

echo "== browser for the end-to-end tests"
bash scripts/ensure_chromium.sh || true

echo "== Postfix for the bounce tests (unpacked privately; no system service)"
bash scripts/ensure_postfix.sh || true

echo "== Dovecot for the feedback poller tests (unpacked privately; no system service)"
bash scripts/ensure_dovecot.sh || true

echo "== OpenDKIM's verifier for the DKIM tests (unpacked privately; no service)"
bash scripts/ensure_opendkim.sh || true

echo "== GNU gettext for the catalogs' test"
bash scripts/ensure_gettext.sh || true

echo "== ruff"
"$BIN/ruff" check .
"$BIN/ruff" format --check .

echo "== pytest on SQLite"
DATABASE_URL="" "$PY" -m pytest "$@"

echo "== pytest on PostgreSQL ($PG_TEST_URL)"
if "$PY" scripts/service_up.py postgres "$PG_TEST_URL"; then
  DATABASE_URL="$PG_TEST_URL" "$PY" -m pytest "$@"
elif [ -n "${CI:-}" ]; then
  echo "FAILED: PostgreSQL is required under CI and is not reachable at $PG_TEST_URL" >&2
  exit 1
else
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  echo "!! SKIPPED the PostgreSQL pass: no server at $PG_TEST_URL (set PG_TEST_URL)."
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
fi

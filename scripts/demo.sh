#!/usr/bin/env bash
# `make demo`: the main job without a browser. Seeds the demo course, starts a local SMTP
# sink and a real celery worker on the embedded defaults, sends to All Learners, shows the
# progress and the final counts, says where the messages are, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
VAR_DIR=${VAR_DIR:-$PWD/var}
export VAR_DIR
# Development: DEBUG pages, the Mailbox, and a key generated once under var/ (settings.py).
export BULK_EMAIL_ENV=${BULK_EMAIL_ENV:-development} DEBUG=${DEBUG:-true}
export EMAIL_HOST=127.0.0.1 EMAIL_PORT=${DEMO_SMTP_PORT:-1026}
LEARNERS=${DEMO_LEARNERS:-2000}
mkdir -p "$VAR_DIR/log"

echo "== Seeding the demo course with $LEARNERS learners"
"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py seed_demo --learners "$LEARNERS" >"$VAR_DIR/log/demo-seed.log"

source scripts/processes.sh

"$PY" -m lms_stub.smtp_sink --port "$EMAIL_PORT" --maildir "$VAR_DIR/mail" \
  >"$VAR_DIR/log/demo-smtp-sink.log" 2>&1 &
pids+=($!)
"$PY" -m celery -A lms_stub worker --loglevel INFO --concurrency 2 -Q default,large \
  -n "demo@%h" >"$VAR_DIR/log/demo-worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do grep -q " ready." "$VAR_DIR/log/demo-worker.log" && break; sleep 0.5; done

echo "== Sending to All Learners of course-v1:DemoX+PHY101+2026 through the worker"
before=$(ls "$VAR_DIR/mail" 2>/dev/null | grep -c '\.eml$' || true)
started=$EPOCHREALTIME
"$PY" manage.py send_course_email --course-id "course-v1:DemoX+PHY101+2026" \
  --sender instructor --subject "Bienvenue, %%USER_FULLNAME%% — semaine 1" \
  --message "<h1>Semaine 1</h1><p>Bonjour %%USER_FULLNAME%%, the course starts today.</p>" \
  --to learners --wait
ended=$EPOCHREALTIME
after=$(ls "$VAR_DIR/mail" | grep -c '\.eml$')
echo
seconds=$(awk "BEGIN { printf \"%.1f\", $ended - $started }")
echo "== Done in $seconds s: the SMTP sink received $((after - before)) messages."
echo "   They are .eml files in $VAR_DIR/mail/ ; 'make run' shows them at /mailbox/."
echo "   Worker log: $VAR_DIR/log/demo-worker.log"

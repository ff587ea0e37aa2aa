#!/usr/bin/env bash
# `make run`: migrate, load the demo data, and serve the site with a real celery worker (and
# its beat dispatcher) and, unless EMAIL_HOST names a real server, a local SMTP sink whose
# mail the Mailbox page shows. Embedded defaults (SQLite in WAL mode, kombu's filesystem
# broker) unless DATABASE_URL and CELERY_BROKER_URL say otherwise. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export SITE_URL=${SITE_URL:-http://$HOST:$PORT}
VAR_DIR=${VAR_DIR:-$PWD/var}
export VAR_DIR
# Development: DEBUG pages, the Mailbox, and a key generated once under var/ (settings.py).
export BULK_EMAIL_ENV=${BULK_EMAIL_ENV:-development} DEBUG=${DEBUG:-true}
mkdir -p "$VAR_DIR/log"

# A taken port would otherwise kill the sink or the site after the setup, with no word said.
ports=("PORT=$HOST:$PORT")
[ -n "${EMAIL_HOST:-}" ] || ports+=("EMAIL_PORT=127.0.0.1:${EMAIL_PORT:-1025}")
"$PY" scripts/check_ports.py "${ports[@]}"

"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py seed_demo

source scripts/processes.sh
# Each process's name and where its output goes, to say which one stopped, if one does.
declare -A name_of log_of

if [ -z "${EMAIL_HOST:-}" ]; then
  export EMAIL_HOST=127.0.0.1 EMAIL_PORT=${EMAIL_PORT:-1025}
  "$PY" -m lms_stub.smtp_sink --port "$EMAIL_PORT" --maildir "$VAR_DIR/mail" \
    >"$VAR_DIR/log/smtp-sink.log" 2>&1 &
  pids+=($!) name_of[$!]="The SMTP sink" log_of[$!]="$VAR_DIR/log/smtp-sink.log"
  mail_line="Mailbox (local SMTP sink on port $EMAIL_PORT): $SITE_URL/mailbox/"
else
  mail_line="Mail goes to $EMAIL_HOST:${EMAIL_PORT:-25}"
fi

"$PY" -m celery -A lms_stub worker --loglevel INFO --concurrency 2 -Q default,large \
  -B -s "$VAR_DIR/celerybeat-schedule" \
  >"$VAR_DIR/log/worker.log" 2>&1 &
pids+=($!) name_of[$!]="The celery worker" log_of[$!]="$VAR_DIR/log/worker.log"

cat <<MSG

  bulk_email demo site: $SITE_URL/
  Instructor dashboard: $SITE_URL/courses/course-v1:DemoX+PHY101+2026/instructor/
  Django admin:         $SITE_URL/admin/
  $mail_line
  Celery worker log:    $VAR_DIR/log/worker.log
  Stop with Ctrl-C.

MSG
"$PY" manage.py runserver --noreload "$HOST:$PORT" &
pids+=($!) name_of[$!]="The web site" log_of[$!]="the output above"

# The first process to end stops them all. On Ctrl-C no process ended on its own: `ended`
# stays unset and nothing more is said.
status=0
wait -n -p ended "${pids[@]}" || status=$?
if [ -n "${ended:-}" ]; then
  echo "make run: ${name_of[$ended]} stopped (exit status $status); see ${log_of[$ended]}." \
    "Stopping the rest." >&2
  status=$((status == 0 ? 1 : status))
fi
exit "$status"

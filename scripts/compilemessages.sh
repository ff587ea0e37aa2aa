#!/usr/bin/env bash
# Build the .mo files from the .po files (GNU gettext's msgfmt). The .mo files are committed:
# a wheel install or a machine without gettext then needs no build step.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export BULK_EMAIL_ENV=${BULK_EMAIL_ENV:-development}
export DJANGO_SETTINGS_MODULE=lms_stub.settings
"$PY" -m django compilemessages --ignore ".venv" --ignore "var"

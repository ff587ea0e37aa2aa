#!/usr/bin/env bash
# Refresh the French and Arabic catalogs from the code, then translate what is new in the .po
# files and run scripts/compilemessages.sh (docs/languages.md: adding a language).
# Each file's strings go to the nearest catalog: bulk_email/locale (it ships in the wheel) for
# the app, lms_stub/locale (LOCALE_PATHS) for the site's code and the project templates.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export BULK_EMAIL_ENV=${BULK_EMAIL_ENV:-development}  # the site's settings load for extraction only
export DJANGO_SETTINGS_MODULE=lms_stub.settings
LOCALES=${LOCALES:-"fr ar"}
args=(--no-obsolete --no-location --no-wrap)
for locale in $LOCALES; do args+=(-l "$locale"); done
not_shipped=(-i ".venv/*" -i "tests/*" -i "bench/*" -i "var/*" -i "scripts/*" -i "deploy/*"
  -i "docs/*" -i "*/migrations/*" -i "build/*")
"$PY" -m django makemessages "${args[@]}" -d django "${not_shipped[@]}"
# The Email tab's and the Email Settings dialog's scripts; ckeditor_csp.js has no words. No
# -i "static/*" here: makemessages matches an ignored directory by its name alone, so it would
# skip bulk_email/static too (the site's own static/ holds no script).
"$PY" -m django makemessages "${args[@]}" -d djangojs "${not_shipped[@]}" \
  -i "bulk_email/static/bulk_email/ckeditor_csp.js"

#!/usr/bin/env bash
# The catalogs' test (tests/test_locale.py) runs GNU gettext's msgfmt and Django's
# makemessages (xgettext, msgmerge): Debian's gettext package, installed with apt when it is
# missing and this user is root. Otherwise says why (the test then skips loudly, fails under CI).
set -u
if command -v msgfmt >/dev/null && command -v xgettext >/dev/null && command -v msgmerge >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "!! gettext: GNU gettext is missing; install Debian's gettext package (as root)." >&2
  exit 1
fi
echo "Installing Debian's gettext ..."
apt-get install -y -qq --no-install-recommends gettext >/dev/null 2>&1 \
  || { apt-get update -qq >/dev/null 2>&1 \
       && apt-get install -y -qq --no-install-recommends gettext >/dev/null 2>&1; }
command -v msgfmt >/dev/null || { echo "!! gettext: apt-get install gettext failed." >&2; exit 1; }

#!/usr/bin/env bash
# The feedback poller's IMAP tests run a real, private Dovecot (tests/dovecot.py), unpacked
# from Debian's dovecot-core and dovecot-imapd by scripts/debian_unpack.sh; /etc/dovecot is
# never read or written (every path is given in the private configuration).
# Prints the folder on success; otherwise says why (the tests then skip loudly, fail under CI).
set -u
cd "$(dirname "$0")/.."
NAME=dovecot
DIST=${DOVECOT_DIST:-$PWD/.cache/dovecot}
PACKAGES="dovecot-core dovecot-imapd"
LIBEXEC=$DIST/usr/lib/dovecot
source scripts/debian_unpack.sh

missing_libraries() {
  LD_LIBRARY_PATH="$LIBEXEC:$LIBEXEC/modules/old-stats" ldd "$DIST/usr/sbin/dovecot" \
    "$DIST/usr/bin/doveconf" "$LIBEXEC/imap" "$LIBEXEC/imap-login" "$LIBEXEC/auth" \
    | grep 'not found'
}

ready() {
  [ -x "$DIST/usr/sbin/dovecot" ] && [ -x "$LIBEXEC/imap" ] && ! missing_libraries >/dev/null
}

ready && say_ready_and_exit
[ -x "$LIBEXEC/imap" ] || fetch_and_unpack
install_missing_libraries
say_ready_or_fail

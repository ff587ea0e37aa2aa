#!/usr/bin/env bash
# The bounce tests run a real, private Postfix (tests/postfix.py), and `make bench` its
# smtp-source and smtp-sink. Unpacked from Debian's package by scripts/debian_unpack.sh;
# /etc/postfix is never read or written. Postfix's daemons need an unprivileged `postfix`
# user and a `postdrop` group: created here (as the package would) when missing, as root.
# Prints the folder on success; otherwise says why (the tests then skip loudly, fail under CI).
set -u
cd "$(dirname "$0")/.."
NAME=postfix
DIST=${POSTFIX_DIST:-$PWD/.cache/postfix}
PACKAGES="postfix"
MASTER=$DIST/usr/lib/postfix/sbin/master
source scripts/debian_unpack.sh

missing_libraries() {
  LD_LIBRARY_PATH="$DIST/usr/lib/postfix" ldd "$DIST/usr/lib/postfix/sbin/smtpd" "$MASTER" \
    | grep 'not found'
}

accounts_present() {
  getent passwd postfix >/dev/null && getent group postdrop >/dev/null
}

ready() {
  [ -x "$MASTER" ] && ! missing_libraries >/dev/null && accounts_present
}

ready && say_ready_and_exit
[ -x "$MASTER" ] || fetch_and_unpack
if [ "$(id -u)" != 0 ]; then
  echo "!! postfix: its master runs as root only; the bounce tests need root." >&2
  exit 1
fi
install_missing_libraries
getent group postdrop >/dev/null || groupadd --system postdrop
getent passwd postfix >/dev/null \
  || useradd --system --user-group --no-create-home --home-dir /var/spool/postfix \
    --shell /usr/sbin/nologin --comment "Postfix (private test instances)" postfix
say_ready_or_fail

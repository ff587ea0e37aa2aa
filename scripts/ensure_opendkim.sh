#!/usr/bin/env bash
# The DKIM tests check signatures with OpenDKIM's own verifier (`opendkim -t`, its test mode:
# one message file, no milter, no DNS; public keys come from the config), unpacked from
# Debian's opendkim, opendkim-tools and libopendkim11 by scripts/debian_unpack.sh;
# /etc/opendkim.conf is never read.
# Prints the folder on success; otherwise says why (the tests then skip loudly, fail under CI).
set -u
cd "$(dirname "$0")/.."
NAME=opendkim
DIST=${OPENDKIM_DIST:-$PWD/.cache/opendkim}
PACKAGES="opendkim opendkim-tools libopendkim11"
BINARY=$DIST/usr/sbin/opendkim
export LD_LIBRARY_PATH="$DIST/usr/lib/x86_64-linux-gnu:$DIST/usr/lib"
source scripts/debian_unpack.sh

missing_libraries() {
  ldd "$BINARY" | grep 'not found'
}

ready() {
  [ -x "$BINARY" ] && ! missing_libraries >/dev/null
}

ready && say_ready_and_exit
[ -x "$BINARY" ] || fetch_and_unpack
install_missing_libraries
say_ready_or_fail

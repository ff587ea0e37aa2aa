#!/usr/bin/env bash
# The feedback poller's IMAP tests run a real, private Dovecot (tests/dovecot.py). Its
# binaries come from Debian's dovecot-core and dovecot-imapd packages, unpacked with
# `dpkg -x` into a cache folder: nothing is installed, no system service is started or
# enabled, /etc/dovecot is never read or written (every path is given in the private
# configuration). Only the packages' missing shared libraries are installed, as root.
# Prints the folder on success; otherwise says why (the tests then skip loudly, fail under CI).
set -u
cd "$(dirname "$0")/.."
DIST=${DOVECOT_DIST:-$PWD/.cache/dovecot}
CACHE=$(dirname "$DIST")
LIBEXEC=$DIST/usr/lib/dovecot
PACKAGES="dovecot-core dovecot-imapd"

missing_libraries() {
  LD_LIBRARY_PATH="$LIBEXEC:$LIBEXEC/modules/old-stats" ldd "$DIST/usr/sbin/dovecot" \
    "$DIST/usr/bin/doveconf" "$LIBEXEC/imap" "$LIBEXEC/imap-login" "$LIBEXEC/auth" \
    | grep 'not found'
}

ready() {
  [ -x "$DIST/usr/sbin/dovecot" ] && [ -x "$LIBEXEC/imap" ] && ! missing_libraries >/dev/null
}

if ready; then
  echo "dovecot: $DIST"
  exit 0
fi

if [ ! -x "$LIBEXEC/imap" ]; then
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "!! dovecot: apt-get and dpkg are needed to fetch Debian's dovecot packages." >&2
    exit 1
  fi
  mkdir -p "$CACHE" || exit 1
  echo "Fetching Debian's $PACKAGES packages into $CACHE ..."
  # shellcheck disable=SC2086
  if ! (cd "$CACHE" && apt-get download $PACKAGES >/dev/null 2>&1); then
    # A fresh machine may have no package lists yet.
    [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1
    # shellcheck disable=SC2086
    (cd "$CACHE" && apt-get download $PACKAGES >/dev/null 2>&1)
  fi
  rm -rf "$DIST.partial"
  for package in $PACKAGES; do
    DEB=$(ls "$CACHE"/${package}_*.deb 2>/dev/null | sort | tail -n 1)
    if [ -z "$DEB" ]; then
      echo "!! dovecot: \`apt-get download $package\` failed (no package source reachable?)." >&2
      exit 1
    fi
    dpkg -x "$DEB" "$DIST.partial" || exit 1
  done
  rm -rf "$DIST" && mv "$DIST.partial" "$DIST"
fi

if missing_libraries >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "!! dovecot: libraries missing and only root installs them:" >&2
    missing_libraries >&2
    exit 1
  fi
  # Only the packages' library dependencies: dovecot itself is never installed.
  LIBS=$(for deb in "$CACHE"/dovecot-core_*.deb "$CACHE"/dovecot-imapd_*.deb; do
    dpkg-deb -f "$deb" Depends; done | tr ',' '\n' | sed 's/[ (].*//; s/^ *//' | grep '^lib' \
    | sort -u)
  echo "Installing dovecot's libraries: $(echo $LIBS) ..."
  apt-get update -qq >/dev/null 2>&1
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $LIBS >/dev/null
fi

if ready; then
  echo "dovecot: $DIST"
  exit 0
fi
echo "!! dovecot: still unusable in $DIST:" >&2
missing_libraries >&2
exit 1

#!/usr/bin/env bash
# The DKIM tests check signatures with OpenDKIM's own verifier (`opendkim -t`, its test mode:
# one message file, no milter, no DNS; public keys come from the config). Its binaries come
# from Debian's packages (opendkim, opendkim-tools, libopendkim11), unpacked with `dpkg -x`
# into a cache folder: nothing of OpenDKIM is installed, no service is started or enabled,
# /etc/opendkim.conf is never read. Only the libraries those binaries link to are installed
# (as root). Prints the folder on success; otherwise says why (the tests then skip loudly,
# fail under CI).
set -u
cd "$(dirname "$0")/.."
DIST=${OPENDKIM_DIST:-$PWD/.cache/opendkim}
CACHE=$(dirname "$DIST")
PACKAGES="opendkim opendkim-tools libopendkim11"
BINARY=$DIST/usr/sbin/opendkim
export LD_LIBRARY_PATH="$DIST/usr/lib/x86_64-linux-gnu:$DIST/usr/lib"

missing_libraries() {
  ldd "$BINARY" | grep 'not found'
}

ready() {
  [ -x "$BINARY" ] && ! missing_libraries >/dev/null
}

if ready; then
  echo "opendkim: $DIST"
  exit 0
fi

if [ ! -x "$BINARY" ]; then
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "!! opendkim: apt-get and dpkg are needed to fetch Debian's opendkim packages." >&2
    exit 1
  fi
  mkdir -p "$CACHE/opendkim-debs" || exit 1
  echo "Fetching Debian's $PACKAGES packages into $CACHE/opendkim-debs ..."
  # shellcheck disable=SC2086
  if ! (cd "$CACHE/opendkim-debs" && apt-get download $PACKAGES >/dev/null 2>&1); then
    # A fresh machine may have no package lists yet.
    [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1
    # shellcheck disable=SC2086
    (cd "$CACHE/opendkim-debs" && apt-get download $PACKAGES >/dev/null 2>&1)
  fi
  rm -rf "$DIST.partial"
  for package in $PACKAGES; do
    DEB=$(ls "$CACHE"/opendkim-debs/"${package}"_*.deb 2>/dev/null | sort | tail -n 1)
    if [ -z "$DEB" ]; then
      echo "!! opendkim: \`apt-get download $package\` failed (no package source reachable?)." >&2
      exit 1
    fi
    dpkg -x "$DEB" "$DIST.partial" || exit 1
  done
  rm -rf "$DIST" && mv "$DIST.partial" "$DIST"
fi

if missing_libraries >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "!! opendkim: its libraries are missing and only root can install them:" >&2
    missing_libraries >&2
    exit 1
  fi
  # Only the packages' library dependencies (libopendkim itself is unpacked above).
  LIBS=$(for DEB in "$CACHE"/opendkim-debs/*.deb; do dpkg-deb -f "$DEB" Depends; done \
    | tr ',' '\n' | sed 's/^ *//; s/[ (].*//' | grep '^lib' | grep -v '^libopendkim' | sort -u)
  echo "Installing opendkim's libraries: $(echo $LIBS) ..."
  apt-get update -qq >/dev/null 2>&1
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $LIBS >/dev/null
fi

if ready; then
  echo "opendkim: $DIST"
  exit 0
fi
echo "!! opendkim: still unusable in $DIST:" >&2
missing_libraries >&2
exit 1

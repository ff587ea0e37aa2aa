#!/usr/bin/env bash
# The bounce tests run a real, private Postfix (tests/postfix.py). Its binaries come from
# Debian's package, unpacked with `dpkg -x` into a cache folder: nothing is installed, no
# system service is started or enabled, /etc/postfix is never read or written. Postfix's
# daemons need an unprivileged `postfix` user and a `postdrop` group: created here (as the
# package would) when missing and this user is root. Quick and silent-ish when all is there.
# Prints the folder on success; otherwise says why (the tests then skip loudly, fail under CI).
set -u
cd "$(dirname "$0")/.."
DIST=${POSTFIX_DIST:-$PWD/.cache/postfix}
CACHE=$(dirname "$DIST")
MASTER=$DIST/usr/lib/postfix/sbin/master

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

if ready; then
  echo "postfix: $DIST"
  exit 0
fi

if [ ! -x "$MASTER" ]; then
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "!! postfix: apt-get and dpkg are needed to fetch Debian's postfix package." >&2
    exit 1
  fi
  mkdir -p "$CACHE" || exit 1
  echo "Fetching Debian's postfix package into $CACHE ..."
  if ! (cd "$CACHE" && apt-get download postfix >/dev/null 2>&1); then
    # A fresh machine may have no package lists yet.
    [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1
    (cd "$CACHE" && apt-get download postfix >/dev/null 2>&1)
  fi
  DEB=$(ls "$CACHE"/postfix_*.deb 2>/dev/null | sort | tail -n 1)
  if [ -z "$DEB" ]; then
    echo "!! postfix: \`apt-get download postfix\` failed (no package source reachable?)." >&2
    exit 1
  fi
  rm -rf "$DIST.partial" && dpkg -x "$DEB" "$DIST.partial" && rm -rf "$DIST" \
    && mv "$DIST.partial" "$DIST"
fi

if [ "$(id -u)" != 0 ]; then
  echo "!! postfix: its master runs as root only; the bounce tests need root." >&2
  exit 1
fi

if missing_libraries >/dev/null; then
  # Only the package's library dependencies: postfix itself is never installed.
  DEB=$(ls "$CACHE"/postfix_*.deb | sort | tail -n 1)
  LIBS=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/[ (].*//; s/^ *//' | grep '^lib')
  echo "Installing postfix's libraries: $(echo $LIBS) ..."
  apt-get update -qq >/dev/null 2>&1
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $LIBS >/dev/null
fi

getent group postdrop >/dev/null || groupadd --system postdrop
getent passwd postfix >/dev/null \
  || useradd --system --user-group --no-create-home --home-dir /var/spool/postfix \
    --shell /usr/sbin/nologin --comment "Postfix (private test instances)" postfix

if ready; then
  echo "postfix: $DIST"
  exit 0
fi
echo "!! postfix: still unusable in $DIST:" >&2
missing_libraries >&2
exit 1

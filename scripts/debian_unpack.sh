# Sourced by scripts/ensure_{postfix,dovecot,opendkim}.sh: the tests' real mail servers and
# verifier come from Debian's packages, unpacked with `dpkg -x` into a cache folder. Nothing
# of them is installed, no service is started or enabled, nothing under /etc is read or
# written; only the shared libraries their binaries link to are installed (as root).
# The caller sets NAME, DIST, PACKAGES and defines missing_libraries (prints what ldd could
# not find) and ready (true when the binaries can run). Messages go to stderr starting "!!",
# which the tests show when they skip (and fail on under CI).

DEBS=$(dirname "$DIST")/$NAME-debs

say_ready_and_exit() {
  echo "$NAME: $DIST"
  exit 0
}

# Download the packages (a fresh machine may have no package lists yet) and unpack them all.
fetch_and_unpack() {
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "!! $NAME: apt-get and dpkg are needed to fetch Debian's $PACKAGES." >&2
    exit 1
  fi
  mkdir -p "$DEBS" || exit 1
  echo "Fetching Debian's $PACKAGES into $DEBS ..."
  # shellcheck disable=SC2086
  if ! (cd "$DEBS" && apt-get download $PACKAGES >/dev/null 2>&1); then
    [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1
    # shellcheck disable=SC2086
    (cd "$DEBS" && apt-get download $PACKAGES >/dev/null 2>&1)
  fi
  rm -rf "$DIST.partial"
  local package deb
  for package in $PACKAGES; do
    deb=$(ls "$DEBS"/"${package}"_*.deb 2>/dev/null | sort | tail -n 1)
    if [ -z "$deb" ]; then
      echo "!! $NAME: \`apt-get download $package\` failed (no package source reachable?)." >&2
      exit 1
    fi
    dpkg -x "$deb" "$DIST.partial" || exit 1
  done
  rm -rf "$DIST" && mv "$DIST.partial" "$DIST"
}

# The packages' library dependencies, every one of them (Depends is "a, b (>= 1), c | d"),
# less the packages unpacked above.
library_dependencies() {
  local deb
  for deb in "$DEBS"/*.deb; do dpkg-deb -f "$deb" Depends; done \
    | tr ',|' '\n\n' | sed 's/^ *//; s/[ (:].*//' | grep '^lib' \
    | grep -vxF -f <(tr ' ' '\n' <<<"$PACKAGES") | sort -u
}

install_missing_libraries() {
  missing_libraries >/dev/null || return 0
  if [ "$(id -u)" != 0 ]; then
    echo "!! $NAME: its libraries are missing and only root can install them:" >&2
    missing_libraries >&2
    exit 1
  fi
  local libraries
  libraries=$(library_dependencies)
  echo "Installing $NAME's libraries: $(echo $libraries) ..."
  apt-get update -qq >/dev/null 2>&1
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $libraries \
    >/dev/null
}

say_ready_or_fail() {
  ready && say_ready_and_exit
  echo "!! $NAME: still unusable in $DIST:" >&2
  missing_libraries >&2
  exit 1
}

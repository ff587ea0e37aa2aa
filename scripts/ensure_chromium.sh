#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (never a downloaded browser), and their screenshots
# need a CJK font for the Unicode course titles (without one, Chinese shows as boxes). Install
# whichever of the two is missing, when this user may; run it again and it installs nothing.
# Without Chromium the browser tests skip loudly (and fail under CI).
set -u
CJK_FONT_PACKAGE=fonts-noto-cjk

has_chromium() {
  [ -n "${CHROMIUM_PATH:-}" ] || command -v chromium >/dev/null 2>&1
}

# Any font fontconfig knows for Chinese will do (fonts-noto-cjk, or a smaller one already there).
has_cjk_font() {
  command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]
}

missing_packages() {
  has_chromium || echo chromium
  has_cjk_font || echo "$CJK_FONT_PACKAGE"
}

install_packages() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "!! cannot install $* here (needs root and apt-get)." >&2
    return 1
  fi
  echo "Installing Debian's $* ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# shellcheck disable=SC2207  # package names have no spaces
missing=($(missing_packages))
[ "${#missing[@]}" -gt 0 ] && install_packages "${missing[@]}"
has_cjk_font || echo "!! no CJK font: Chinese text shows as boxes in screenshots." >&2
if has_chromium; then
  echo "chromium: ${CHROMIUM_PATH:-$(command -v chromium)}"
  exit 0
fi
echo "!! chromium is not installed and cannot be installed here: browser tests will skip." >&2
exit 1

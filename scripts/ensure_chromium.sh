#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (never a downloaded browser). Install it, and CJK
# fonts for the Unicode course titles, when missing and this user may; otherwise the browser
# tests skip loudly (and fail under CI).
set -u
if command -v chromium >/dev/null 2>&1 || [ -n "${CHROMIUM_PATH:-}" ]; then
  echo "chromium: $(command -v chromium || echo "$CHROMIUM_PATH")"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium and fonts-noto-cjk ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  command -v chromium >/dev/null 2>&1 && exit 0
fi
echo "!! chromium is not installed and cannot be installed here: browser tests will skip." >&2
exit 1

#!/usr/bin/env bash
# Installs the browser the UI tests drive: Debian's chromium and
# chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver). Idempotent;
# WEFT_TEST_CHROMIUM and WEFT_TEST_CHROMEDRIVER name others instead.
set -euo pipefail

die() { echo "browser/install.sh: error: $*" >&2; exit 1; }

chromium="${WEFT_TEST_CHROMIUM:-/usr/bin/chromium}"
driver="${WEFT_TEST_CHROMEDRIVER:-/usr/bin/chromedriver}"
if [ -x "$chromium" ] && [ -x "$driver" ]; then
  echo "chromium and chromedriver: present ($("$driver" --version | cut -d' ' -f1-2))"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 \
  || die "no apt-get: install Chromium and its ChromeDriver, and set WEFT_TEST_CHROMIUM and WEFT_TEST_CHROMEDRIVER"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
install() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; }
install || { $sudo apt-get update && install; } || die "apt-get install chromium chromium-driver failed"
[ -x "$driver" ] || die "chromium-driver installed no $driver"

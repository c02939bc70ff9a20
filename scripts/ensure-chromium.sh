#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium and its matching chromedriver are installed: the
# console's browser tests (tests/console) drive them through Selenium, which is pointed at
# /usr/bin/chromedriver and never downloads a browser or driver of its own. Installs the
# Debian packages 'chromium' and 'chromium-driver' when missing and running as root.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: chromium or chromedriver is missing; installing the Debian packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] \
    || { echo "ensure-chromium: still missing after the install" >&2; exit 1; }
else
  echo "ensure-chromium: missing; install with: sudo apt-get install -y chromium chromium-driver" >&2
  exit 1
fi

#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests if it is missing (Playwright drives it;
# it never downloads a browser of its own).
set -euo pipefail
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] && exit 0
"$(dirname "$0")/apt-install.sh" chromium "for the browser tests (~30 s)" \
  "install Chromium and set CHROMIUM=/path/to/it"
"$chromium" --version

#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests if it is missing (Playwright drives it;
# it never downloads a browser of its own).
set -euo pipefail
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "error: $chromium is missing and installing it needs root: run \`sudo apt-get install -y chromium\`" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "error: $chromium is missing and this is not a Debian/Ubuntu system; install Chromium and set CHROMIUM=/path/to/it" >&2
  exit 1
fi
echo "== installing Debian's chromium for the browser tests (~30 s)"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$chromium" --version

#!/usr/bin/env bash
# Installs one Debian package with apt-get, as root or through passwordless sudo.
# Usage: apt-install.sh PACKAGE "what it is for" "what to do on a system without apt-get"
set -euo pipefail
package=$1 purpose=$2 elsewhere=$3

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "error: $package is missing and installing it needs root: run \`sudo apt-get install -y $package\`" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "error: $package is missing and this is not a Debian/Ubuntu system; $elsewhere" >&2
  exit 1
fi
echo "== installing Debian's $package $purpose"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$package" >/dev/null

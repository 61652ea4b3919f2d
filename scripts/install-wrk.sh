#!/usr/bin/env bash
# Installs Debian's wrk (the HTTP load generator the ingest-throughput figure uses) if missing.
set -euo pipefail
command -v wrk >/dev/null && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "error: wrk is missing and installing it needs root: run \`sudo apt-get install -y wrk\`" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "error: wrk is missing and this is not a Debian/Ubuntu system; install wrk (https://github.com/wg/wrk)" >&2
  exit 1
fi
echo "== installing Debian's wrk for the benchmarks"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends wrk >/dev/null

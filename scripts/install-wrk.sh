#!/usr/bin/env bash
# Installs Debian's wrk (the HTTP load generator the ingest-throughput figure uses) if missing.
set -euo pipefail
command -v wrk >/dev/null && exit 0
"$(dirname "$0")/apt-install.sh" wrk "for the benchmarks" "install wrk (https://github.com/wg/wrk)"

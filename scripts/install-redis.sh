#!/usr/bin/env bash
# Installs Debian's redis-server if it is missing: the store several `rasa run` replicas share
# (the cluster tests start their own on a loopback port; nothing here starts it).
set -euo pipefail
command -v redis-server >/dev/null && exit 0
"$(dirname "$0")/apt-install.sh" redis-server "for the cluster tests and benchmarks (~20 s)" \
  "install redis-server (Redis 6 or newer)"
redis-server --version

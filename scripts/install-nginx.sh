#!/usr/bin/env bash
# Installs Debian's nginx if it is missing: the balancer in front of several `rasa run` replicas
# (the tests start their own, as the current user, from a config they render; nothing here
# starts it, and Debian's own site is not enabled by anything of ours). Also iproute2's `ss`,
# with which the cluster tests read the replicas' listening sockets (their accept backlog).
set -euo pipefail
if ! command -v ss >/dev/null && ! [ -x /usr/bin/ss ] && ! [ -x /bin/ss ]; then
  "$(dirname "$0")/apt-install.sh" iproute2 "for the cluster tests (ss)" "install iproute2 (ss)"
fi
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
"$(dirname "$0")/apt-install.sh" nginx "for the cluster tests (~20 s)" "install nginx (1.18 or newer)"
/usr/sbin/nginx -v

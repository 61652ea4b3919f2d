#!/usr/bin/env bash
# Installs the host app's npm dependencies exactly as locked (app/package-lock.json).
# Called by `make` when package.json or the lock file changed or node_modules is missing.
set -euo pipefail
cd "$(dirname "$0")/../app"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "error: Node.js and npm are needed for the app (Node >= 20.9); install them and re-run" >&2
  exit 1
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 9) ? 0 : 1)'; then
  echo "error: Next.js 16 needs Node >= 20.9; this is $(node --version)" >&2
  exit 1
fi
echo "== installing the app's npm dependencies (first run: ~20 s)"
# `npm install` with the committed lock installs the locked versions. Not `npm ci`: it also
# insists on lock entries for other platforms' optional packages (Next's macOS/Windows SWC
# binaries), which a Linux-only registry mirror does not serve. The machine's ~/.npmrc may
# carry keys npm 11 warns about; they change nothing here.
npm install --no-audit --no-fund --loglevel=error 2>&1 | { grep -v 'Unknown user config' || true; }
touch node_modules/.installed

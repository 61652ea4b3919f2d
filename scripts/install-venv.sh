#!/usr/bin/env bash
# Creates .venv with Python 3.10 and installs the pinned dependencies.
# Called by `make` when a requirements file changed or .venv is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
py=$(scripts/find-python310.sh)

if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then
  echo "== $venv is not Python 3.10; recreating it"
  rm -rf "$venv"
fi
[ -x "$venv/bin/python" ] || { echo "== creating $venv with $py"; "$py" -m venv "$venv"; }

pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q "pip==24.0" 2>&1 | { grep -v "^WARNING: Location" || true; }
echo "== installing Python dependencies (first run: ~2 min)"
"${pip[@]}" install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
"${pip[@]}" install -q --no-deps -r requirements-nodeps.txt -c constraints.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
"$venv/bin/python" -c 'import rasa, rasa_sdk, autoplay_sdk, openai'
touch "$venv/.installed"

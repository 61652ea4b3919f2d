#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter (Rasa 3.6 needs >=3.8,<3.11).
# Order: $PYTHON310, python3.10 on PATH, pyenv's versions. Exits 1 with advice if none.
set -euo pipefail

is_310() { [ -x "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "3.10" ]; }

candidates=()
[ -n "${PYTHON310:-}" ] && candidates+=("$PYTHON310")
command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for d in $(ls -d "$root"/versions/3.10.* 2>/dev/null | sort -V -r); do
    candidates+=("$d/bin/python3.10")
  done
fi
for c in "${candidates[@]}"; do
  # pyenv's shim for python3.10 fails when 3.10 is not the active version; test the real thing.
  if is_310 "$c"; then echo "$c"; exit 0; fi
done
cat >&2 <<'MSG'
error: Python 3.10 not found. Rasa Open Source 3.6 supports Python >=3.8,<3.11.
  Install one (e.g. `pyenv install 3.10.13`, or your OS's python3.10 package),
  or point PYTHON310 at an interpreter: `make test PYTHON310=/path/to/python3.10`.
MSG
exit 1

#!/usr/bin/env bash
# Installs the Python SDK test services' dependencies (restate-sdk 1.2.0, hypercorn) into a
# virtualenv in the perdure cache. Idempotent and quiet; with --print-python the last line of
# stdout is the venv's python.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cache="${PERDURE_CACHE:-$HOME/.cache/perdure}"
venv="$cache/python-venv"
req="$repo/tests/services/python/requirements.txt"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s "$req" "$stamp"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi
if [ "${1:-}" = "--print-python" ]; then
  echo "$venv/bin/python"
fi

#!/usr/bin/env bash
# Creates (or refreshes) the Python venv the interop suite runs in: .venv/
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=interop/requirements.txt
stamp=.venv/.requirements
if [[ -x .venv/bin/python ]] && cmp -s "$requirements" "$stamp"; then
    exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"

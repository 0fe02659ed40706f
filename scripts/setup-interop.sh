#!/usr/bin/env bash
# Creates (or refreshes) the Python venv the interop suite runs in: .venv/,
# and installs Debian's Chromium and its WebDriver for the console's
# browser tests if they are not there.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
    sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y chromium chromium-driver >/dev/null 2>&1 \
        || { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y chromium chromium-driver >/dev/null; }
fi
requirements=interop/requirements.txt
stamp=.venv/.requirements
if [[ -x .venv/bin/python ]] && cmp -s "$requirements" "$stamp"; then
    exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"

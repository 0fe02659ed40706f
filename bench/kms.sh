#!/usr/bin/env bash
# Runs the encryption suites in one go: SSE modes side by side on one Tern,
# then Tern's KMS against moto's (installed into ~/.cache/tern/moto on first use):
#   bench/kms.sh [tern-bench args…]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${TERN_MOTO_VENV:-$HOME/.cache/tern/moto}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

cargo build --release -p tern -p tern-bench
if [[ ! -x "$venv/bin/moto_server" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.1"
fi
port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
pids+=($!); wait_port "$port"

target/release/tern-bench --tern-bin target/release/tern --suite sse --workloads 1m,64m "$@"
target/release/tern-bench --tern-bin target/release/tern --suite kms --moto "http://127.0.0.1:$port" "$@"

#!/usr/bin/env bash
# Runs tern-bench with Tern and its peers side by side in one run:
#   bench/peers.sh [tern-bench args…]      e.g. bench/peers.sh --rounds 3
# Peers are installed from crates.io into ~/.cache/tern/peers on first use:
# s3s-fs (always) and Garage (if TERN_BENCH_GARAGE=1; a long build).
set -euo pipefail
cd "$(dirname "$0")/.."
peers="${TERN_PEERS_DIR:-$HOME/.cache/tern/peers}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

cargo build --release -p tern -p tern-bench
[[ -x "$peers/bin/s3s-fs" ]] || cargo install --locked s3s-fs@0.14.1 --features binary --root "$peers"
targets=()

port=$(free_port); mkdir -p "$work/s3s-fs"
"$peers/bin/s3s-fs" --host 127.0.0.1 --port "$port" --access-key BENCHKEY --secret-key BENCHSECRET "$work/s3s-fs" >/dev/null 2>&1 &
pids+=($!); wait_port "$port"
targets+=(--target "s3s-fs=http://127.0.0.1:$port,BENCHKEY,BENCHSECRET,$!")

if [[ "${TERN_BENCH_GARAGE:-0}" == 1 ]]; then
    [[ -x "$peers/bin/garage" ]] || cargo install --locked garage@2.5.0 --root "$peers"
    read -r flag spec < <(bench/garage.sh "$peers/bin/garage" "$work/garage")
    targets+=("$flag" "$spec")
    pids+=($(cat "$work/garage/pid"))
fi

target/release/tern-bench --tern-bin target/release/tern "${targets[@]}" "$@"

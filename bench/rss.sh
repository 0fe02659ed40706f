#!/usr/bin/env bash
# Peak RSS of a tern region while a 2 GiB object is uploaded (single PUT and
# multipart) and downloaded with the aws cli; then peak RSS of `tern cse`
# (the client) encrypting, uploading, downloading and decrypting the same
# file: bench/rss.sh [SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2G}
work=$(mktemp -d)
cleanup() { kill "$tern_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cargo build --release -p tern >/dev/null 2>&1
scripts/setup-interop.sh
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'data_dir = "%s/data"\n[[region]]\nname = "us-east-1"\nlisten = "127.0.0.1:%s"\n' "$work" "$port" > "$work/tern.toml"
export TERN_ROOT_ACCESS_KEY_ID=AKIARSSBENCH00000000 TERN_ROOT_SECRET_ACCESS_KEY=rss-bench-secret
export AWS_ACCESS_KEY_ID=$TERN_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$TERN_ROOT_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1
target/release/tern up --config "$work/tern.toml" > "$work/tern.log" 2>&1 &
tern_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/_tern/health" >/dev/null && break; sleep 0.1; done
aws() { .venv/bin/aws --endpoint-url "http://127.0.0.1:$port" "$@"; }
peak() { awk '/VmHWM/ {print $2/1024 " MiB"}' "/proc/$tern_pid/status"; }
truncate -s "$size" "$work/object"
aws s3 mb s3://rss >/dev/null
echo "idle:                peak RSS $(peak)"
aws s3api put-object --bucket rss --key single --body "$work/object" >/dev/null
echo "after single PUT:    peak RSS $(peak)"
aws s3 cp --quiet "$work/object" s3://rss/multipart
echo "after multipart:     peak RSS $(peak)"
aws s3 cp --quiet s3://rss/multipart "$work/back"
cmp "$work/object" "$work/back"
echo "after download:      peak RSS $(peak) (download verified byte-exact)"

key=$(aws kms create-key --query KeyMetadata.KeyId --output text)
cse() {
    /usr/bin/time -f %M -o "$work/cse-rss" target/release/tern cse "$@" --endpoint-url "http://127.0.0.1:$port" 2>>"$work/cse.log"
    echo "$(( $(cat "$work/cse-rss") / 1024 )) MiB"
}
echo "tern cse put:        peak RSS $(cse put "$work/object" s3://rss/cse --kms-key-id "$key") (client)"
echo "tern cse get:        peak RSS $(cse get s3://rss/cse "$work/cse-back") (client)"
cmp "$work/object" "$work/cse-back"
echo "(client-side round trip verified byte-exact)"

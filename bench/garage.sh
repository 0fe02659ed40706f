#!/usr/bin/env bash
# Starts a single-node Garage for bench/peers.sh and prints the tern-bench
# --target argument for it: bench/garage.sh GARAGE_BIN WORKDIR
# (Garage is AGPL; it is only installed and run here, never linked.)
set -euo pipefail
garage=$1 work=$2
mkdir -p "$work"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
s3=$(port) rpc=$(port) admin=$(port)
cat > "$work/garage.toml" <<TOML
metadata_dir = "$work/meta"
data_dir = "$work/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(openssl rand -hex 32 2>/dev/null || python3 -c 'import secrets; print(secrets.token_hex(32))')"
[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "bench-admin-token"
TOML
g() { "$garage" -c "$work/garage.toml" "$@"; }
# Started directly (not through `g`) so that $! is Garage itself and the
# caller's cleanup can stop it.
"$garage" -c "$work/garage.toml" server > "$work/garage.log" 2>&1 &
echo $! > "$work/pid"
for _ in $(seq 100); do g status >/dev/null 2>&1 && break; sleep 0.2; done
node=$(g status 2>/dev/null | awk '/^[0-9a-f]{16}/ {print $1; exit}')
g layout assign -z dc1 -c 10G "$node" >/dev/null
g layout apply --version 1 >/dev/null
keys=$(g key create bench-key)
id=$(awk '/Key ID/ {print $NF}' <<<"$keys")
secret=$(awk '/Secret key/ {print $NF}' <<<"$keys")
g key allow --create-bucket bench-key >/dev/null
echo "--target garage=http://127.0.0.1:$s3,$id,$secret"

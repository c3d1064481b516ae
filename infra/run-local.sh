#!/usr/bin/env bash
# Runs the deletion service locally: DynamoDB Local as the ledger and moto
# as the rest of AWS (S3, Scheduler, KMS), both on loopback, the API on
# http://127.0.0.1:${PORT:-8787}, a short grace (GRACE_SECONDS, default 20)
# so a deletion can be watched from SCHEDULED to COMPLETED. Ctrl-C stops it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
infra/bootstrap.sh

moto_port="${MOTO_PORT:-5055}"
dynamodb_port="${DYNAMODB_PORT:-5056}"
export AWS_ENDPOINT_URL="http://127.0.0.1:${moto_port}"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:${dynamodb_port}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export LEDGER_TABLE="${LEDGER_TABLE:-deletion-ledger}"
export SCHEDULE_GROUP="${SCHEDULE_GROUP:-deletion-grace}"
export DATA_MAP_FILE="${DATA_MAP_FILE:-$root/infra/local/data-map.json}"
export GRACE_SECONDS="${GRACE_SECONDS:-20}"
export LEASE_SECONDS="${LEASE_SECONDS:-60}"
export VERSIONED_BUCKETS="${VERSIONED_BUCKETS:-cdp-profiles}"
export PORT="${PORT:-8787}"

cargo build --locked -p local-runner

mkdir -p .local
.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >.local/moto.log 2>&1 &
moto_pid=$!
infra/dynamodb-local/start.sh "$dynamodb_port" >.local/dynamodb.log 2>&1 &
dynamodb_pid=$!
trap 'kill "$moto_pid" "$dynamodb_pid" 2>/dev/null || true' EXIT INT TERM
for port in "$moto_port" "$dynamodb_port"; do
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
done
echo "moto on $AWS_ENDPOINT_URL (log: .local/moto.log), DynamoDB Local on $AWS_ENDPOINT_URL_DYNAMODB (log: .local/dynamodb.log)"
echo "API on http://127.0.0.1:$PORT; grace ${GRACE_SECONDS}s"
target/debug/local-runner

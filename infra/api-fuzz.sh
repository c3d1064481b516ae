#!/usr/bin/env bash
# Fuzzes the HTTP API against its OpenAPI document (api/openapi.json) with
# schemathesis: starts the local service as infra/run-local.sh does (moto,
# DynamoDB Local and the local runner, on free ports of its own so a run in progress is
# not disturbed), mints an operator token and lets schemathesis generate
# requests for every operation. Fails on any 5xx and on any answer the
# document does not describe (status, content type, headers, body).
#
# Generated callback URLs are pointed at a closed port on loopback
# (infra/api-fuzz-hooks.py): the runner sends callbacks to them.
#
# Settings: API_FUZZ_SECONDS (generation budget, default 120),
# API_FUZZ_SEED (repeat a run), API_FUZZ_WORKERS (default 1: schemathesis's
# workers are threads, and with two of them a run here once stopped on
# "SystemError: AST constructor recursion depth mismatch", a CPython 3.11
# issue seen in threaded programs, gh-106905). Logs and schemathesis's JUnit
# report go to .local/api-fuzz/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
infra/bootstrap.sh

target="${CARGO_TARGET_DIR:-$root/target}"
seconds="${API_FUZZ_SECONDS:-120}"
workers="${API_FUZZ_WORKERS:-1}"
out="$root/.local/api-fuzz"
mkdir -p "$out"

# Built with the whole workspace's test features (dev-dependencies such as
# aws-smithy-mocks turn on features of the SDK's crates), as `cargo test
# --workspace` builds them: after infra/test.sh's tests this links the
# runner's binaries instead of compiling the SDK again.
cargo build --locked --workspace --bins --tests

free_port() {
  .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
moto_port="$(free_port)"
dynamodb_port="$(free_port)"
while [ "$dynamodb_port" = "$moto_port" ]; do dynamodb_port="$(free_port)"; done
api_port="$(free_port)"
while [ "$api_port" = "$moto_port" ] || [ "$api_port" = "$dynamodb_port" ]; do api_port="$(free_port)"; done

export AWS_ENDPOINT_URL="http://127.0.0.1:${moto_port}"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:${dynamodb_port}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export LEDGER_TABLE=fuzz-ledger SCHEDULE_GROUP=fuzz-grace
export DATA_MAP_FILE="$root/infra/local/data-map.json"
export GRACE_SECONDS="${GRACE_SECONDS:-20}" LEASE_SECONDS=60
export VERSIONED_BUCKETS=cdp-profiles
export PORT="$api_port"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_port() {
  local port="$1" pid="$2" what="$3"
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "api-fuzz: $what exited; see $out" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "api-fuzz: $what did not listen on port $port within 30 s; see $out" >&2
  return 1
}

.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$out/moto.log" 2>&1 &
pids+=("$!")
wait_for_port "$moto_port" "${pids[-1]}" moto
infra/dynamodb-local/start.sh "$dynamodb_port" >"$out/dynamodb.log" 2>&1 &
pids+=("$!")
wait_for_port "$dynamodb_port" "${pids[-1]}" "DynamoDB Local"

"$target/debug/local-runner" >"$out/runner.log" 2>&1 &
pids+=("$!")
wait_for_port "$api_port" "${pids[-1]}" local-runner

token="$("$target/debug/mint-token" ops deletion:operator)"

seed=()
if [ -n "${API_FUZZ_SEED:-}" ]; then seed=(--seed "$API_FUZZ_SEED"); fi
echo "api-fuzz: schemathesis for ${seconds}s against http://127.0.0.1:$api_port (moto on $moto_port, DynamoDB Local on $dynamodb_port; logs in $out)"
start=$(date +%s)
status=0
# From $out: schemathesis keeps a cache of crashes in ./.schemathesis.
(cd "$out" && SCHEMATHESIS_HOOKS="$root/infra/api-fuzz-hooks.py" "$root/.venv/bin/schemathesis" --no-color \
  run "$root/api/openapi.json" \
  --url "http://127.0.0.1:$api_port" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-time "$seconds" \
  --workers "$workers" \
  --request-timeout 30 \
  --generation-database "$out/examples" \
  --report junit --report-junit-path "$out/junit.xml" \
  "${seed[@]}") || status=$?
echo "api-fuzz: $( [ "$status" = 0 ] && echo passed || echo "FAILED (exit $status)" ) in $(( $(date +%s) - start ))s"
exit "$status"

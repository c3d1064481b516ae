#!/usr/bin/env bash
# Installs what the project needs into a project-local virtualenv (.venv):
# moto for running and testing locally; with --sam also aws-sam-cli,
# cfn-lint and cargo-lambda for the template checks. Idempotent and quiet
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
if [ "${1:-}" = "--sam" ]; then
  install "$root/infra/requirements-sam.txt"
fi

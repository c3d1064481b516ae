#!/usr/bin/env bash
# Checks the SAM template: cfn-lint on template.yaml as it is (arm64), then
# `sam build` with cargo-lambda. The build runs on an x86_64 copy of the
# template: this machine has only the x86_64 Rust standard library and
# cannot download another target, so it proves the build pipeline (SAM,
# cargo-lambda, zig, the four binaries) but not the arm64 cross-build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
infra/bootstrap.sh --sam
export PATH="$root/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0

echo "check-template: cfn-lint template.yaml"
cfn-lint template.yaml

copy=.template-x86_64.yaml
build=.aws-sam-x86_64
trap 'rm -f "$copy"' EXIT
sed 's/^      - arm64$/      - x86_64/' template.yaml >"$copy"
grep -q -- '- x86_64' "$copy" || { echo "check-template: could not make the x86_64 copy" >&2; exit 1; }

# sam build builds each function on its own; they share one compilation of
# their dependencies only if the features agree (see the script).
python3 infra/check-shared-features.py intake grace-timer purge notifier

echo "check-template: sam build (x86_64 copy)"
sam build --template-file "$copy" --build-dir "$build" --beta-features </dev/null

for fn in IntakeFunction GraceTimerFunction PurgeFunction NotifierFunction; do
  test -s "$build/$fn/bootstrap" || { echo "check-template: no bootstrap for $fn" >&2; exit 1; }
done
echo "check-template: ok (cfn-lint clean; sam build made bootstrap for all four functions)"

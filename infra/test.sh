#!/usr/bin/env bash
# Runs every test: unit tests of the domain and integration tests that
# drive the real flow against a moto server the harness starts on loopback,
# then schemathesis against the local service (infra/api-fuzz.sh, about
# 2.5 minutes; API_FUZZ=0 skips it). Ends with one line that sums all test
# binaries and the fuzz run, as one test: "tests: N passed, N failed".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
infra/bootstrap.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
fuzz=skipped
if [ "${API_FUZZ:-1}" = 0 ]; then
  echo "api-fuzz: not run (API_FUZZ=0); CI always runs it" >&2
else
  if infra/api-fuzz.sh; then
    fuzz=passed
  else
    fuzz=failed
    if [ "$status" = 0 ]; then status=1; fi
  fi
fi
awk -v fuzz="$fuzz" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { p += (fuzz == "passed"); f += (fuzz == "failed"); printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

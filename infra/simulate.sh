#!/usr/bin/env bash
# The scale simulation (README "Scale simulation"): the purge engine against
# S3, DynamoDB, Scheduler and Lambda at their documented limits, in
# simulated time. Not part of the tests; about two minutes after the build.
#   infra/simulate.sh                  every scenario, seed 1
#   infra/simulate.sh sources --seed 7 one scenario (purge-sim --help)
# Each run's timeline goes to target/simulation/<scenario>.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  set -- all
fi
cargo build --release --locked -p simulator --bin purge-sim
exec target/release/purge-sim "$@" --timeline target/simulation

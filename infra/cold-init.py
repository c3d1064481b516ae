#!/usr/bin/env python3
"""Cold init of each function's bootstrap: from process start to its first
poll of the Lambda runtime API (GET .../runtime/invocation/next), served
here by a stub on a free loopback port. Runs each binary RUNS times (default
7) and prints the median and min-max in milliseconds, with the file size.

Each run starts with the binary evicted from the page cache
(posix_fadvise DONTNEED), so it is read from disk as in a new execution
environment; EVICT=0 keeps it cached.

Usage: infra/cold-init.py DIR [DIR ...]
  DIR holds IntakeFunction/bootstrap, ... (sam build's layout, e.g.
  .aws-sam-x86_64) or intake, purge, ... (cargo's target/release).
Not part of the tests: a measurement for the README.
"""

import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

RUNS = int(os.environ.get("RUNS", "7"))
# EVICT=0 keeps the binary in the page cache between runs (a warm start of
# the process, not of Lambda).
EVICT = os.environ.get("EVICT", "1") != "0"
FUNCTIONS = {
    "intake": "IntakeFunction",
    "grace-timer": "GraceTimerFunction",
    "purge": "PurgeFunction",
    "notifier": "NotifierFunction",
}
KEY = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "cold",
    "AWS_SECRET_ACCESS_KEY": "cold",
    "AWS_LAMBDA_FUNCTION_NAME": "cold",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "1",
    "AWS_LAMBDA_LOG_FORMAT": "JSON",
    "LEDGER_TABLE": "ledger",
    "SCHEDULE_GROUP": "grace",
    "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/scheduler",
    "PURGE_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:deletion-purge",
    "RECEIPT_SIGNING_KEY_ID": KEY,
    "RECEIPT_KMS_KEY_ID": KEY,
    "CALLBACK_KMS_KEY_ID": KEY,
    "SUBJECT_KMS_KEY_ID": KEY,
    "OPENDSR_KMS_KEY_ID": KEY,
    "FUNCTION_TIMEOUT_SECONDS": "900",
    "DATA_MAP": '{"stores":[{"name":"archive","bucket":"cdp-archive","layout":"{workspace}/{source}/{day}/",'
    '"user_records":{"format":"gzip-jsonl","user_id_field":"userId"}},'
    '{"name":"profiles","bucket":"cdp-profiles","layout":"{workspace}/spaces/{space}/"}]}',
}

polled = threading.Event()


class Runtime(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the stdlib's name)
        if self.path.endswith("/runtime/invocation/next"):
            polled.set()
            time.sleep(0.5)  # never answers an invocation; the process is killed
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def binary(directory, name):
    for path in (os.path.join(directory, FUNCTIONS[name], "bootstrap"), os.path.join(directory, name)):
        if os.path.isfile(path):
            return path
    return None


def evict(path):
    """Drops the binary's pages from the page cache, so each run reads it
    from disk as a new Lambda execution environment does."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def cold_init(path, port):
    env = dict(os.environ, **ENV, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}")
    if EVICT:
        evict(path)
    polled.clear()
    start = time.perf_counter()
    process = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not polled.wait(10):
        process.kill()
        err = process.stderr.read().decode(errors="replace")[-400:]
        raise SystemExit(f"{path}: no poll of the runtime API in 10 s: {err}")
    elapsed = (time.perf_counter() - start) * 1000
    process.kill()
    process.wait()
    return elapsed


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    print(f"{'build':<28} {'function':<12} {'MB':>6} {'cold init ms (median, min-max)':>32}")
    for directory in sys.argv[1:]:
        for name in FUNCTIONS:
            path = binary(directory, name)
            if path is None:
                continue
            times = sorted(cold_init(path, port) for _ in range(RUNS))
            size = os.path.getsize(path) / 1e6
            print(
                f"{directory:<28} {name:<12} {size:>6.2f} "
                f"{statistics.median(times):>14.1f} ({times[0]:.1f}-{times[-1]:.1f})"
            )


if __name__ == "__main__":
    main()

"""Reads and writes the local archive (moto) as the platform's archiver would.

    .venv/bin/python infra/local/archive.py put KEY < events.jsonl   # gzip and store
    .venv/bin/python infra/local/archive.py cat KEY                  # current version, gunzipped
    .venv/bin/python infra/local/archive.py versions PREFIX          # every version and delete marker

Bucket: ARCHIVE_BUCKET (cdp-archive); endpoint: AWS_ENDPOINT_URL
(http://127.0.0.1:5055, as infra/run-local.sh starts moto).
"""

import gzip
import os
import sys

import boto3


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5055"),
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def main(argv):
    if len(argv) != 3 or argv[1] not in ("put", "cat", "versions"):
        sys.exit(__doc__)
    s3, bucket, arg = client(), os.environ.get("ARCHIVE_BUCKET", "cdp-archive"), argv[2]
    if argv[1] == "put":
        s3.put_object(Bucket=bucket, Key=arg, Body=gzip.compress(sys.stdin.buffer.read()))
    elif argv[1] == "cat":
        body = s3.get_object(Bucket=bucket, Key=arg)["Body"].read()
        sys.stdout.write(gzip.decompress(body).decode())
    else:
        out = s3.list_object_versions(Bucket=bucket, Prefix=arg)
        for v in out.get("Versions", []):
            print(v["Key"], v["VersionId"], "latest" if v["IsLatest"] else "older")
        for m in out.get("DeleteMarkers", []):
            print(m["Key"], m["VersionId"], "delete-marker")


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""Independent S3 client for the s3 destination tests (boto3, not Arrow's S3 code we upload with).

The server and credentials come from the environment: S3_ENDPOINT, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION (what scripts/s3-sandbox writes to its state file).

  read_s3.py mkbucket BUCKET              create the bucket (no error if it exists)
  read_s3.py list BUCKET PREFIX           JSON list of {"key", "size", "content_type", "etag",
                                          "last_modified"}, by key
  read_s3.py parquet-codecs BUCKET KEY    JSON list of the compression codecs of a Parquet object
  read_s3.py download BUCKET PREFIX DIR   every object under PREFIX to DIR/<schema.table>/<name>
                                          (the date= folder dropped), the layout
                                          tests/readers/replay_changes.py reads; prints the count
"""
import json
import os
import sys

import boto3
from botocore.config import Config


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def objects(s3, bucket, prefix):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    s3 = client()
    if cmd == "mkbucket":
        try:
            s3.create_bucket(Bucket=args[0])
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    elif cmd == "list":
        bucket, prefix = args
        out = []
        for obj in objects(s3, bucket, prefix):
            head = s3.head_object(Bucket=bucket, Key=obj["Key"])
            out.append({"key": obj["Key"], "size": obj["Size"],
                        "content_type": head.get("ContentType", ""), "etag": obj["ETag"],
                        "last_modified": obj["LastModified"].timestamp()})
        json.dump(sorted(out, key=lambda o: o["key"]), sys.stdout)
    elif cmd == "parquet-codecs":
        import io
        import pyarrow.parquet as pq
        bucket, key = args
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        meta = pq.ParquetFile(io.BytesIO(body)).metadata
        codecs = {meta.row_group(g).column(c).compression
                  for g in range(meta.num_row_groups) for c in range(meta.num_columns)}
        json.dump(sorted(codecs), sys.stdout)
    elif cmd == "download":
        bucket, prefix, root = args
        n = 0
        for obj in objects(s3, bucket, prefix):
            parts = obj["Key"][len(prefix):].split("/")
            # <schema.table>/date=YYYY-MM-DD/<name>
            if len(parts) != 3 or not parts[1].startswith("date="):
                raise SystemExit(f"unexpected key layout: {obj['Key']}")
            folder = os.path.join(root, parts[0])
            os.makedirs(folder, exist_ok=True)
            s3.download_file(bucket, obj["Key"], os.path.join(folder, parts[2]))
            n += 1
        print(n)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()

"""An S3 bucket for a logging configuration: one that IVS Chat's log delivery may write to.

IVS Chat delivers chat logs as AWS "vended logs": the writer is the log-delivery service
(``delivery.logs.amazonaws.com``), which needs ``s3:PutObject`` under ``AWSLogs/<account>/`` with the
``bucket-owner-full-control`` ACL, and ``s3:GetBucketAcl`` on the bucket, both limited to your
account's log deliveries. CreateLoggingConfiguration adds these statements itself when the caller
may change the bucket policy; this module writes them when it creates the bucket, so a learner sees
them. Bucket names are global across AWS, so a made bucket gets a random suffix; ``IVS_LOG_BUCKET``
names an existing bucket of yours instead, which the kit then never empties or deletes.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from ivs_widgets.aws.created import CreatedResources

BUCKET_VARIABLE = "IVS_LOG_BUCKET"
DELIVERY_SERVICE = "delivery.logs.amazonaws.com"


def delivery_policy(bucket: str, account: str, region: str) -> dict[str, Any]:
    """The bucket policy that lets log delivery for ``account`` write chat logs to ``bucket``."""
    condition = {"StringEquals": {"aws:SourceAccount": account},
                 "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{region}:{account}:*"}}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSLogDeliveryWrite", "Effect": "Allow", "Principal": {"Service": DELIVERY_SERVICE},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{account}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                        **condition["StringEquals"]}, "ArnLike": condition["ArnLike"]}},
        {"Sid": "AWSLogDeliveryAclCheck", "Effect": "Allow", "Principal": {"Service": DELIVERY_SERVICE},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}", "Condition": condition}]}


def log_bucket(s3: Any, account: str, region: str, prefix: str, created: CreatedResources) -> str:
    """``IVS_LOG_BUCKET`` when set; else a new bucket ``<prefix>-<random>`` in ``region`` with the delivery
    policy, recorded in ``created`` so that clean-up empties and deletes it."""
    named = os.environ.get(BUCKET_VARIABLE)
    if named:
        return named
    bucket = f"{prefix}-{secrets.token_hex(6)}"[-63:].lstrip("-.")
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **location)
    created.add(f"S3 bucket {bucket}", lambda: delete_bucket(s3, bucket))
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(delivery_policy(bucket, account, region)))
    return bucket


def delete_bucket(s3: Any, bucket: str) -> None:
    """Empty the bucket (every object; chat-log buckets are not versioned) and delete it."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)

"""S3 access: one boto3 client built from settings, and bucket provisioning with anonymous read."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.errors import ServiceUnavailable
from pipelines.settings import Settings

# Content type of every JSON document written to the bucket (manifest, latest.json, validation report, catalog):
# all are UTF-8 (written with ensure_ascii=False), and a browser opening one directly should decode it so.
JSON_TYPE = "application/json; charset=utf-8"
ARROW_TYPE = "application/vnd.apache.arrow.file"


def json_document(body: Any, *, sort_keys: bool = True) -> bytes:
    """The bytes of a JSON document written to the bucket: compact, because every publish uploads a manifest,
    datapackage, validation report and catalog that list every file of a release; indented, they were 20-30 %
    whitespace (0.34 MB of a 10,000-tally batch at a million stations). Browsers and ``jq`` indent on display."""
    return json.dumps(body, sort_keys=sort_keys, ensure_ascii=False, separators=(",", ":")).encode()


def s3_client(settings: Settings, *, anonymous: bool = False, admin: bool = False) -> Any:
    """A boto3 S3 client for the configured endpoint (path-style, which every S3 server accepts), one per
    process for each endpoint and keys: building one takes 10-60 ms, and a publish asks for one in most of its
    steps (boto3's clients are thread-safe; a forked child builds its own).

    The publisher's keys may write but never delete (the bucket policy denies it); ``admin`` uses the
    administrator's keys, which only garbage collection needs.
    """
    keys = None if anonymous else (
        (settings.s3_admin_access_key_id, settings.s3_admin_secret_access_key) if admin else
        (settings.s3_access_key_id, settings.s3_secret_access_key))
    return _client(os.getpid(), settings.s3_endpoint_url or None, settings.s3_region, keys)


@functools.lru_cache(maxsize=16)
def _client(pid: int, endpoint_url: str | None, region: str, keys: tuple[str, str] | None) -> Any:
    from botocore import UNSIGNED

    config = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 3, "mode": "standard"},
        signature_version=UNSIGNED if keys is None else None,
        # versitygw and most non-AWS servers reject the newer default CRC32 trailers on multipart parts.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=None if keys is None else keys[0],
        aws_secret_access_key=None if keys is None else keys[1],
        config=config,
    )


def public_read_policy(bucket: str) -> str:
    """A bucket policy letting anyone GET objects (and nothing else)."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PublicRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/*"],
        }],
    })


def ensure_bucket(settings: Settings) -> str:
    """Create the release bucket if missing and make its objects publicly readable. Returns what it did."""
    s3 = s3_client(settings)
    bucket = settings.release_bucket
    try:
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        created = bucket not in existing
        if created:
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"S3 at {settings.s3_endpoint_url}: {exc}") from exc
    return f"bucket {bucket}: {'created' if created else 'exists'} (public read)"

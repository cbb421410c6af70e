"""Who may write S3: the publisher's account and the release bucket's policy on the local versitygw, idempotent.

versitygw's root account bypasses bucket policies, so the publisher is a separate account (role ``user``) in the
gateway's accounts store (``--iam-dir``); root (``BALLOTSTREAM_S3_ADMIN_*``) only provisions and removes partial
releases. The bucket policy lets anyone GET the published objects (not the private checkpoints); lets the
publisher put, get and list; and denies the
publisher every delete: of a published release's objects above all, and multi-object deletes (which versitygw
authorises per bucket, not per key, so allowing them would allow deleting releases).
"""

from __future__ import annotations

import json
import subprocess

from botocore.exceptions import BotoCoreError, ClientError

from infra.local_services import VERSITYGW
from pipelines.errors import ServiceUnavailable
from pipelines.release.s3 import ensure_bucket, s3_client
from pipelines.settings import Settings

# What publishing does: put (single and multipart), read back, list. Nothing that changes the bucket itself.
PUBLISHER_OBJECT_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
PUBLISHER_BUCKET_ACTIONS = ("s3:ListBucket", "s3:ListBucketMultipartUploads")
# What anyone may GET, per dataset: releases and the files of split tables they list, the latest pointer, the
# catalog and blocked gate reports. Not
# ``<dataset>/checkpoints/`` (pipelines.release.checkpoint): the publisher's private state.
PUBLIC_OBJECTS = ("*/releases/*", "*/tables/*", "*/parts/*", "*/latest.json", "*/index.html", "*/catalog.json",
                  "*/reports/*")


def admin_settings(settings: Settings) -> Settings:
    """The same settings with the administrator's (root) keys in place of the publisher's."""
    from dataclasses import replace

    return replace(settings, s3_access_key_id=settings.s3_admin_access_key_id,
                   s3_secret_access_key=settings.s3_admin_secret_access_key)


def bucket_policy(settings: Settings) -> str:
    """Public GET of ``PUBLIC_OBJECTS``; publisher put/get/list; publisher deletes denied (explicitly for
    ``<dataset>/releases/*``)."""
    bucket, publisher = settings.release_bucket, {"AWS": settings.s3_access_key_id}
    objects, everything = f"arn:aws:s3:::{bucket}/*", f"arn:aws:s3:::{bucket}"
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            # What the public reads, by name: everything else (the checkpoints above all) is private.
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
             "Resource": [f"arn:aws:s3:::{bucket}/{pattern}" for pattern in PUBLIC_OBJECTS]},
            {"Sid": "PublisherWritesObjects", "Effect": "Allow", "Principal": publisher,
             "Action": list(PUBLISHER_OBJECT_ACTIONS), "Resource": [objects]},
            {"Sid": "PublisherListsBucket", "Effect": "Allow", "Principal": publisher,
             "Action": list(PUBLISHER_BUCKET_ACTIONS), "Resource": [everything]},
            # The bucket resource covers DeleteObjects (checked once per request by versitygw).
            {"Sid": "PublishedReleasesAreNeverDeleted", "Effect": "Deny", "Principal": publisher,
             "Action": ["s3:DeleteObject"], "Resource": [f"arn:aws:s3:::{bucket}/*/releases/*", everything]},
        ],
    })


def versitygw_admin(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``versitygw admin ...`` against the configured endpoint with the root keys."""
    return subprocess.run([str(VERSITYGW), "admin", "-a", settings.s3_admin_access_key_id,
                           "-s", settings.s3_admin_secret_access_key, "--er", settings.s3_endpoint_url, *args],
                          capture_output=True, text=True, timeout=30)


def _account_exists(settings: Settings) -> bool:
    listed = versitygw_admin(settings, "list-users")
    if listed.returncode != 0:
        raise ServiceUnavailable(f"versitygw admin list-users failed: {(listed.stderr or listed.stdout).strip()}")
    return any(line.split()[:1] == [settings.s3_access_key_id] for line in listed.stdout.splitlines())


def _ensure_account(settings: Settings) -> str:
    key, secret = settings.s3_access_key_id, settings.s3_secret_access_key
    if key == settings.s3_admin_access_key_id:
        raise ServiceUnavailable("BALLOTSTREAM_S3_ACCESS_KEY_ID is the root key: the publisher must be its own "
                                 "account, or the bucket policy would not apply to it")
    existed = _account_exists(settings)
    if not existed:
        created = versitygw_admin(settings, "create-user", "-a", key, "-s", secret, "-r", "user")
        if created.returncode == 0:
            return f"s3 account {key}: created (publisher)"
        if not _account_exists(settings):  # else another `make up` (a parallel test session) created it first
            raise ServiceUnavailable(f"versitygw admin create-user {key} failed: "
                                     f"{(created.stderr or created.stdout).strip()}")
    # Resets the secret, so a changed BALLOTSTREAM_S3_SECRET_ACCESS_KEY takes effect.
    updated = versitygw_admin(settings, "update-user", "-a", key, "-s", secret)
    if updated.returncode != 0:
        raise ServiceUnavailable(f"versitygw admin update-user {key} failed: "
                                 f"{(updated.stderr or updated.stdout).strip()}")
    return f"s3 account {key}: {'exists, secret set' if existed else 'created'} (publisher)"


def ensure_publisher(settings: Settings) -> list[str]:
    """The release bucket, the publisher's account and the bucket policy; root keys, idempotent.

    Raises:
        ServiceUnavailable: S3 does not answer, or refused a change.
    """
    admin = admin_settings(settings)
    lines = [ensure_bucket(admin), _ensure_account(settings)]
    try:
        s3_client(admin).put_bucket_policy(Bucket=settings.release_bucket, Policy=bucket_policy(settings))
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"S3 at {settings.s3_endpoint_url}: bucket policy: {exc}") from exc
    lines.append(f"bucket {settings.release_bucket}: policy set (public read; {settings.s3_access_key_id} "
                 "writes, never deletes a release)")
    return lines

"""Who may write S3, against the real versitygw: the publisher's keys (the default settings) put, read and list a
release, but every attempt to delete a published release's objects, one by one or in a batch, or to loosen the
bucket policy, is refused with 403 (counted: 100 %), and every byte stays. The administrator's keys, used only by
`make up` and to remove partial releases, can delete. The account and policy come from
``infra.s3_access.ensure_publisher``, which `make up` runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.s3_access import admin_settings, ensure_publisher
from pipelines.release.s3 import public_read_policy, s3_client
from pipelines.settings import Settings
from tests.support.releases import Published, delete_dataset, upload_fake_releases


@pytest.fixture
def published(services: Settings, unique: str) -> Iterator[Published]:
    ensure_publisher(services)  # what `make up` ran; idempotent
    dataset = f"test-{unique}"
    yield upload_fake_releases(services, dataset)  # with the publisher's keys: put and get allowed
    delete_dataset(services, dataset)


def _refused(attempt: Callable[[], Any]) -> bool:
    """True for a 403 AccessDenied; False when the call went through. Any other error fails the test."""
    try:
        answer = attempt()
    except ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 403:
            return True
        raise
    # DeleteObjects may answer 200 with per-key errors: refused only if every key was.
    errors = answer.get("Errors", []) if isinstance(answer, dict) else []
    return bool(errors) and not answer.get("Deleted") and all(e["Code"] == "AccessDenied" for e in errors)


def test_publisher_cannot_delete_a_published_release(published: Published):
    settings, bucket = published.settings, published.settings.release_bucket
    publisher = s3_client(settings)
    release_keys = sorted(k for k in published.files if "/releases/" in k)
    listed = publisher.list_objects_v2(Bucket=bucket, Prefix=f"{published.dataset}/releases/")
    assert sorted(o["Key"] for o in listed["Contents"]) == release_keys  # the publisher lists
    attempts: dict[str, Callable[[], Any]] = {
        f"delete {key}": (lambda k=key: publisher.delete_object(Bucket=bucket, Key=k)) for key in release_keys
    }
    attempts |= {
        "delete every release object in one request": lambda: publisher.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in release_keys]}),
        "replace the bucket policy": lambda: publisher.put_bucket_policy(
            Bucket=bucket, Policy=public_read_policy(bucket)),
        "delete the bucket policy": lambda: publisher.delete_bucket_policy(Bucket=bucket),
    }
    refused = {label: _refused(attempt) for label, attempt in attempts.items()}
    print(f"\npublisher deletes and policy changes refused: {sum(refused.values())} of {len(refused)} "
          f"({100 * sum(refused.values()) / len(refused):.0f} %)")
    assert [label for label, ok in refused.items() if not ok] == []
    assert len(release_keys) >= 2
    admin = s3_client(admin_settings(settings))
    for key in release_keys:
        assert admin.get_object(Bucket=bucket, Key=key)["Body"].read() == published.files[key]


def test_only_the_administrator_removes_a_release(published: Published):
    settings, bucket = published.settings, published.settings.release_bucket
    key = next(k for k in published.files if "/releases/" in k)
    with pytest.raises(ClientError) as refused:
        s3_client(settings).delete_object(Bucket=bucket, Key=key)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    s3_client(admin_settings(settings)).delete_object(Bucket=bucket, Key=key)  # e.g. gc of a partial release
    with pytest.raises(ClientError) as gone:
        s3_client(settings).head_object(Bucket=bucket, Key=key)
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

"""ObjectStore on S3. URIs are s3://bucket/key."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterator

from botocore.exceptions import ClientError

from chalicelib.pipeline.records import ObjectInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class S3ObjectStore:
    def __init__(self, client: S3Client):
        self._s3 = client

    def list(self, uri: str) -> Iterator[ObjectInfo]:
        """ListObjectVersions, not ListObjectsV2: the same current objects, and their version ids, which a
        run's manifest records (chalicelib/pipeline/manifest.py). An unversioned bucket answers "null" for each.
        Older versions and delete markers are passed over (the bucket keeps the data set's for a year at least:
        `flowers restore` copies one back from a manifest, chalicelib/pipeline/lineage.py)."""
        bucket, prefix = split(uri)
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Versions", []):
                if obj.get("IsLatest"):
                    version_id = obj.get("VersionId", "")
                    yield ObjectInfo(obj["Key"][len(prefix):], obj.get("ETag", "").strip('"'), int(obj.get("Size", 0)),
                                     "" if version_id == "null" else version_id)

    def read(self, uri: str) -> bytes:
        bucket, key = split(uri)
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def read_start(self, uri: str, size: int) -> bytes:
        bucket, key = split(uri)
        try:
            return self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")["Body"].read(size)
        except ClientError as error:
            if error.response["Error"]["Code"] == "InvalidRange":  # an empty object has no byte 0
                return b""
            raise

    def write(self, uri: str, data: bytes) -> None:
        bucket, key = split(uri)
        content_type = "application/json" if key.endswith(".json") else "application/octet-stream"
        self._s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def write_once(self, uri: str, data: bytes, lock_days: int = 0) -> bool:
        """PutObject with If-None-Match: * (S3 answers 412 when the key exists; 409 when a concurrent conditional
        write to it is under way): the artifact bucket's policy refuses manifests/ writes without it (infra/)."""
        bucket, key = split(uri)
        extra: dict[str, Any] = {}
        if lock_days > 0:  # needs s3:PutObjectRetention; botocore adds the checksum S3 asks of locked uploads
            extra = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": _until(lock_days)}
        content_type = "application/json" if key.endswith(".json") else "application/octet-stream"
        attempts = 3
        while True:
            attempts -= 1
            try:
                self._s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*", **extra)
                return True
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if code == "PreconditionFailed":
                    return False
                # Another conditional write of the key was under way: asked again, S3 answers 412 once it is done.
                if code != "ConditionalRequestConflict" or not attempts:
                    raise

    def lock(self, uri: str, days: int) -> int:
        """PutObjectRetention on each current object under the prefix (ListObjectsV2 lists them). A later date than
        a replay's earlier one only extends the lock, which governance mode allows without a bypass."""
        bucket, prefix = split(uri)
        until, count = _until(days), 0
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                self._s3.put_object_retention(Bucket=bucket, Key=obj["Key"],
                                              Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
                count += 1
        return count

    def restore_version(self, uri: str, version_id: str) -> None:
        """CopyObject of that version onto its own key (up to 5 GB: photos are far smaller)."""
        bucket, key = split(uri)
        self._s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key, "VersionId": version_id})

    def exists(self, uri: str) -> bool:
        """Listed, not HeadObject'ed: S3 answers a HEAD of a missing key 404 only to a caller that may list the
        whole bucket, else 403, and our roles may list only the prefixes they read (s3:prefix conditions, which a
        HEAD does not carry). A listing of the key as prefix needs exactly that grant; the key itself sorts first."""
        bucket, key = split(uri)
        found = self._s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
        return bool(found) and found[0].get("Key") == key

    def join(self, uri: str, *parts: str) -> str:
        return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])

    def download_url(self, uri: str, seconds: int) -> str:
        bucket, key = split(uri)
        return self._s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds)


def _until(days: int) -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=days)

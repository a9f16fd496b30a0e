"""ObjectStore on S3. URIs are s3://bucket/key."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

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
        Older versions and delete markers are passed over (the bucket expires them after 30 days)."""
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

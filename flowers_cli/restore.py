"""`flowers restore VERSION`: put back the photos a run trained on, from its manifest (chalicelib/pipeline/lineage.py).

Every file the manifest of data set version VERSION names whose recorded version is no longer the current one
(deleted, or replaced by an upload) is copied back from the bucket's versions; files added since stay. In the cloud
(`--stack NAME`, or `--artifact-bucket NAME`) it runs with your AWS credentials, as `flowers push --bucket` does:
s3:GetObject on the manifest, s3:ListBucketVersions, s3:GetObjectVersion and s3:PutObject on the data set. Locally
the bucket folder keeps no earlier versions: restore says which files differ from the manifest and cannot come back.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from chalicelib.contract import bucket_layout as layout
from chalicelib.pipeline import job_names, lineage
from chalicelib.ports import ObjectStore
from flowers_cli.client import stack_outputs
from flowers_cli.errors import RUNTIME, UsageError
from flowers_cli.home import configure

SHOWN = 50  # files listed by name; the rest counted


def artifact_bucket_of(stack: str, session: Any = None) -> str:
    """The stack's output ArtifactBucketName."""
    return stack_outputs(stack, session, needed=("ArtifactBucketName",))["ArtifactBucketName"]


def _store(args: argparse.Namespace) -> tuple[ObjectStore, str]:
    """The object store and the artifact bucket's name: the cloud's with --stack / --artifact-bucket, else the home's."""
    stack = args.stack or ""
    if stack or args.artifact_bucket:
        import boto3

        from chalicelib.adapters.aws.s3_objects import S3ObjectStore

        return S3ObjectStore(boto3.client("s3")), args.artifact_bucket or artifact_bucket_of(stack)
    configure(args)
    from chalicelib.adapters.local.wiring import LocalAdapters
    from chalicelib.settings import from_environ

    settings = from_environ()
    return LocalAdapters(settings).objects, settings.artifact_bucket


def main(args: argparse.Namespace) -> int:
    if not job_names.VERSION.match(args.version):
        raise UsageError(f"{args.version!r} is not a data set version (16 hexadecimal characters, from `flowers models`)")
    objects, bucket = _store(args)
    uri = layout.manifest_record(bucket, args.version)
    if not objects.exists(uri):
        print(f"error: data set version {args.version} has no manifest ({uri})", file=sys.stderr)
        return RUNTIME
    found = lineage.restore(objects, uri, dry_run=args.dry_run)
    verb = "would restore" if args.dry_run else "restored"
    print(f"data set version {found.version} ({found.dataset_uri}): {verb} {len(found.to_restore)} file(s), "
          f"{found.intact} as recorded")
    for key, version_id in found.to_restore[:SHOWN]:
        print(f"  {verb} {key} (version {version_id})")
    if len(found.to_restore) > SHOWN:
        print(f"  ... and {len(found.to_restore) - SHOWN} more")
    if found.unrecoverable:
        first = ", ".join(found.unrecoverable[:5]) + (" ..." if len(found.unrecoverable) > 5 else "")
        print(f"error: {len(found.unrecoverable)} file(s) changed or gone since the run cannot be restored: the manifest "
              f"names no version of them (local mode keeps no earlier versions of a file, nor does a bucket without versioning): {first}", file=sys.stderr)
        return RUNTIME
    return 0

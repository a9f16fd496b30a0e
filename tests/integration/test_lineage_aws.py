"""Nothing lost (issue 27, item 5), against moto with the buckets as the stack makes them: a versioned dataset bucket and
an artifact bucket with Object Lock; the Lambdas lock for a year (LINEAGE_LOCK_DAYS, as the stack sets it).

- a run's manifest is written once and locked; a redelivered launch that finds it there goes on;
- a model's files are locked when it is registered; a locked version cannot be deleted without the governance bypass;
- `flowers restore` puts back, from a run's manifest, the photos deleted or replaced since (bytes as recorded).

The bucket policy that refuses a manifests/ PutObject without If-None-Match is asserted on the template
(tests/infra/test_infra_retention.py): moto does not evaluate bucket policies.
"""
from __future__ import annotations

import hashlib
import json

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

import app as chalice_app
from chalicelib.adapters.aws.s3_objects import S3ObjectStore
from pipeline_fixtures import aws, processing_state_event, training_state_event  # noqa: F401  (fixture)
from test_pipeline_aws import World

LOCK_DAYS = 365


@pytest.fixture
def world(aws, monkeypatch):  # noqa: F811
    from chalicelib import services

    s3 = aws.s3
    s3.put_bucket_versioning(Bucket=aws.dataset_bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.delete_bucket(Bucket=aws.artifacts)  # empty still: made again as the stack makes it
    s3.create_bucket(Bucket=aws.artifacts, ObjectLockEnabledForBucket=True)
    monkeypatch.setenv("LINEAGE_LOCK_DAYS", str(LOCK_DAYS))
    services.reset()
    with Client(chalice_app.app) as client:
        yield World(aws, client)


def _launch(world, keys):
    world.upload(keys)
    world.now += 601
    run = world.tick()
    assert run["action"] == "started", run
    return run["version"]


def _retention(s3, bucket, key):
    """The current version's lock, as HeadObject reports it (moto has no GetObjectRetention)."""
    head = s3.head_object(Bucket=bucket, Key=key)
    return {"Mode": head.get("ObjectLockMode"), "RetainUntilDate": head.get("ObjectLockRetainUntilDate")}


def test_the_manifest_is_written_once_and_locked(world):
    s3, artifacts = world.aws.s3, world.aws.artifacts
    version = _launch(world, ["daisy/a.jpg", "roses/b.jpg"])
    for key in (f"manifests/{version}.json", f"manifests/{version}.manifest"):
        retention = _retention(s3, artifacts, key)
        assert retention["Mode"] == "GOVERNANCE"
        days = (retention["RetainUntilDate"].timestamp() - s3.head_object(Bucket=artifacts, Key=key)["LastModified"].timestamp()) / 86400
        assert LOCK_DAYS - 1 < days <= LOCK_DAYS + 1, (key, days)
    objects = S3ObjectStore(s3)
    uri = f"s3://{artifacts}/manifests/{version}.json"
    first = s3.get_object(Bucket=artifacts, Key=f"manifests/{version}.json")["Body"].read()
    # A second writer is refused by S3 itself (412) and takes it for "written already": the first record stays.
    assert objects.write_once(uri, b"something else", LOCK_DAYS) is False
    versions = s3.list_object_versions(Bucket=artifacts, Prefix=f"manifests/{version}.json")["Versions"]
    assert len(versions) == 1 and s3.get_object(Bucket=artifacts, Key=f"manifests/{version}.json")["Body"].read() == first
    # Locked: its version cannot be deleted, except with the governance bypass (a person with s3:BypassGovernanceRetention).
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=artifacts, Key=f"manifests/{version}.json", VersionId=versions[0]["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_a_redelivered_launch_that_races_the_manifest_goes_on(world, monkeypatch):
    """The launch checks first (HeadObject); a writer that loses the race to another gets S3's 412, not a failed run."""
    s3, artifacts = world.aws.s3, world.aws.artifacts
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    real_exists = S3ObjectStore.exists
    written = []

    def raced(self, uri):  # another delivery wrote both files (the same bytes) just after this one looked
        if "/manifests/" in uri and not written:
            from chalicelib.pipeline import manifest
            from chalicelib.pipeline.dataset_version import listing

            dataset_uri = f"s3://{world.aws.dataset_bucket}/{world.aws.prefix}"
            version = uri.rsplit("/", 1)[1].split(".")[0]
            objects = listing(S3ObjectStore(s3), dataset_uri)
            for suffix, body in ((".manifest", manifest.channel(dataset_uri, objects)),
                                 (".json", manifest.record(dataset_uri, version, objects))):
                s3.put_object(Bucket=artifacts, Key=f"manifests/{version}{suffix}", Body=body, IfNoneMatch="*")
            written.append(version)
            return False
        return real_exists(self, uri)

    monkeypatch.setattr(S3ObjectStore, "exists", raced)
    run = world.tick()
    assert run["action"] == "started", run
    for suffix in (".manifest", ".json"):  # the other writer's, not replaced; and not locked by it
        (only,) = s3.list_object_versions(Bucket=artifacts, Prefix=f"manifests/{written[0]}{suffix}")["Versions"]
        assert "ObjectLockMode" not in s3.head_object(Bucket=artifacts, Key=f"manifests/{written[0]}{suffix}")


def test_a_registered_models_files_are_locked(world):
    s3, artifacts = world.aws.s3, world.aws.artifacts
    _launch(world, ["daisy/a.jpg", "roses/b.jpg"])
    version, result = world.finish_run(accuracy=0.95)
    assert result["action"] == "registered", result
    for name in ("model.tflite", "labels.txt", "metadata.json"):
        assert _retention(s3, artifacts, f"models/{version}/{name}")["Mode"] == "GOVERNANCE", name
    # An overwrite leaves the locked version in place: the registered bytes can always be read back.
    head = s3.list_object_versions(Bucket=artifacts, Prefix=f"models/{version}/model.tflite")["Versions"][0]
    s3.put_object(Bucket=artifacts, Key=f"models/{version}/model.tflite", Body=b"not the model")
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=artifacts, Key=f"models/{version}/model.tflite", VersionId=head["VersionId"])
    kept = s3.get_object(Bucket=artifacts, Key=f"models/{version}/model.tflite", VersionId=head["VersionId"])["Body"].read()
    assert kept == f"tflite-bytes-{version}".encode()


def test_a_store_that_cannot_lock_fails_the_run_with_why(world, monkeypatch):
    _launch(world, ["daisy/a.jpg", "roses/b.jpg"])

    def refused(self, uri, days):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObjectRetention")

    monkeypatch.setattr(S3ObjectStore, "lock", refused)
    version, result = world.finish_run(accuracy=0.95)
    assert result["action"] == "failed"
    assert result["reason"] == "locking the model's files failed: AccessDenied (PutObjectRetention): Access Denied"
    assert world.packages() == [] and world.status()["running_job"] is None


def test_restore_puts_back_a_deleted_and_a_replaced_photo_from_the_manifest(world, capsys):
    from flowers_cli.main import main

    s3, bucket, prefix = world.aws.s3, world.aws.dataset_bucket, world.aws.prefix
    keys = ["daisy/a.jpg", "daisy/b.jpg", "roses/c.jpg"]
    version = _launch(world, keys)
    record = json.loads(s3.get_object(Bucket=world.aws.artifacts, Key=f"manifests/{version}.json")["Body"].read())
    recorded = {f["key"]: f for f in record["files"]}
    s3.delete_object(Bucket=bucket, Key=prefix + "daisy/b.jpg")  # a delete marker: the version stays
    s3.put_object(Bucket=bucket, Key=prefix + "roses/c.jpg", Body=b"relabelled or replaced")
    s3.put_object(Bucket=bucket, Key=prefix + "tulips/new.jpg", Body=b"added since")

    assert main(["restore", version, "--artifact-bucket", world.aws.artifacts, "--dry-run"]) == 0
    assert "would restore 2 file(s), 1 as recorded" in capsys.readouterr().out
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key=prefix + "daisy/b.jpg")  # a dry run changes nothing

    assert main(["restore", version, "--artifact-bucket", world.aws.artifacts]) == 0
    out = capsys.readouterr().out
    assert "restored 2 file(s), 1 as recorded" in out
    assert f"restored daisy/b.jpg (version {recorded['daisy/b.jpg']['version_id']})" in out
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=prefix + key)["Body"].read()
        named = s3.get_object(Bucket=bucket, Key=prefix + key, VersionId=recorded[key]["version_id"])["Body"].read()
        assert body == named and hashlib.md5(body).hexdigest() == recorded[key]["etag"], key
    assert s3.get_object(Bucket=bucket, Key=prefix + "tulips/new.jpg")["Body"].read() == b"added since"  # left alone
    # Again: nothing to do.
    assert main(["restore", version, "--artifact-bucket", world.aws.artifacts]) == 0
    assert "restored 0 file(s), 3 as recorded" in capsys.readouterr().out


def test_restore_of_a_version_without_a_manifest_says_so(world, capsys):
    from flowers_cli.main import main

    assert main(["restore", "0123456789abcdef", "--artifact-bucket", world.aws.artifacts]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: data set version 0123456789abcdef has no manifest (s3://{world.aws.artifacts}/manifests/0123456789abcdef.json)")
    assert main(["restore", "../../etc", "--artifact-bucket", world.aws.artifacts]) == 2
    assert "is not a data set version" in capsys.readouterr().err

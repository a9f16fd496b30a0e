"""Nothing lost (issue 27, item 5) and access logs kept (item 7), on the synthesized templates: earlier versions of the
data set, models and manifests kept a year, scratch prefixes shorter; Object Lock on the artifact bucket and manifests
written once; the access logs kept a year and retained when even a throwaway stack (retain_data=false) is deleted."""
from __future__ import annotations

import pytest

from test_infra import (  # noqa: F401  (fixtures; first: it puts infra/ on the path)
    SECOND_STACK,
    cdk_out,
    functions,
    one,
    raw,
    resources,
    second_raw,
    statements,
    text,
)

from flowers_infra.config import FlowersConfig  # noqa: E402

YEAR = 365


def _rules(raw, bucket_prefix):  # noqa: F811
    _, bucket = one(raw, "AWS::S3::Bucket", bucket_prefix)
    return bucket["Properties"]["LifecycleConfiguration"]["Rules"]


def _noncurrent_days(rule) -> int:
    return rule["NoncurrentVersionExpiration"]["NoncurrentDays"]


@pytest.mark.parametrize("bucket, kept, scratch", [
    ("DatasetBucket", {"datasets/flowers/"}, {"classify/", "predictions/"}),
    ("ArtifactBucket", {"models/", "manifests/"}, {"training/", "checkpoints/", "tensorboard/", "features/"}),
])
def test_lineage_versions_are_kept_a_year_and_no_rule_covers_the_whole_bucket(raw, bucket, kept, scratch):  # noqa: F811
    rules = _rules(raw, bucket)
    by_prefix = {r.get("Prefix"): r for r in rules}
    for prefix in kept:
        assert _noncurrent_days(by_prefix[prefix]) >= YEAR and not by_prefix[prefix].get("ExpirationInDays"), prefix
    for prefix in scratch:
        assert 0 < _noncurrent_days(by_prefix[prefix]) < YEAR, prefix
    # Overlapping rules: S3 applies the shorter expiration. A bucket-wide one would cut the year short.
    for rule in rules:
        assert rule["Status"] == "Enabled"
        if not rule.get("Prefix"):
            assert set(rule) == {"Id", "Status", "AbortIncompleteMultipartUpload"}, rule


def test_the_retention_is_configurable_and_refused_under_a_year():
    assert FlowersConfig.from_context({"lineage_retention_days": "730"}.get).lineage_retention_days == 730
    for name in ("lineage_retention_days", "access_log_retention_days"):
        with pytest.raises(ValueError, match=f"{name}=30: at least 365"):
            FlowersConfig.from_context({name: "30"}.get)
    config = FlowersConfig(lineage_retention_days=400)
    assert config.lambda_environment()["LINEAGE_LOCK_DAYS"] == "400"
    # A stack that keeps no data locks nothing: its buckets are emptied when it is deleted.
    assert FlowersConfig(retain_data=False).lambda_environment()["LINEAGE_LOCK_DAYS"] == "0"


def test_the_artifact_bucket_has_object_lock_without_a_default_retention(raw):  # noqa: F811
    _, bucket = one(raw, "AWS::S3::Bucket", "ArtifactBucket")
    assert bucket["Properties"]["ObjectLockEnabled"] is True
    # Bucket-wide default retention would hold checkpoints, job outputs and the feature cache a year too.
    assert "Rule" not in bucket["Properties"].get("ObjectLockConfiguration", {})
    for other in ("DatasetBucket", "AccessLogs"):  # S3 delivers no access logs into a bucket with Object Lock
        assert "ObjectLockEnabled" not in one(raw, "AWS::S3::Bucket", other)[1]["Properties"]


def test_manifests_are_written_once_whoever_writes(raw):  # noqa: F811
    artifacts_id, _ = one(raw, "AWS::S3::Bucket", "ArtifactBucket")
    (policy,) = [p for p in resources(raw, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": artifacts_id}]
    (deny,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "ManifestsAreWrittenOnce"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"} and deny["Action"] == "s3:PutObject"
    assert deny["Condition"] == {"Null": {"s3:if-none-match": "true"}}
    assert text(deny["Resource"]).endswith('/manifests/*"]]}')


def test_the_pipeline_role_locks_manifests_and_models_and_the_functions_know_for_how_long(raw):  # noqa: F811
    role_of = {name: f["Properties"]["Role"]["Fn::GetAtt"][0] for name, f in functions(raw).items()}
    def locked(name: str) -> set[str]:
        grants = [s for s in statements(raw, role_of[name]) if "PutObjectRetention" in text(s["Action"])]
        assert all(s["Action"] == "s3:PutObjectRetention" for s in grants), grants
        return {text(r).split('"/')[-1] for s in grants for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}

    assert locked("Tick") == {'manifests/*"]]}', 'models/*"]]}'}  # manifests as written, models at registration
    assert locked("APIHandler") == {'manifests/*"]]}'}  # POST /runs writes (and locks) the run's manifest
    assert locked("OnUpload") == set()
    for function in functions(raw).values():
        assert function["Properties"]["Environment"]["Variables"]["LINEAGE_LOCK_DAYS"] == str(YEAR)


@pytest.mark.parametrize("which", ["default", "throwaway"])
def test_access_logs_are_kept_a_year_and_outlive_the_stack(raw, second_raw, which):  # noqa: F811
    template = raw if which == "default" else second_raw
    _, group = one(template, "AWS::Logs::LogGroup", "AppApiAccessLogs")
    assert group["Properties"]["RetentionInDays"] >= YEAR
    assert group["DeletionPolicy"] == "Retain" and group["UpdateReplacePolicy"] == "Retain"
    _, bucket = one(template, "AWS::S3::Bucket", "AccessLogs")
    assert bucket["DeletionPolicy"] == "Retain"
    (expire,) = [r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"] if r.get("ExpirationInDays")]
    assert expire["ExpirationInDays"] >= YEAR
    if which == "throwaway":  # retain_data=false: the data goes with the stack, the access logs do not
        assert one(template, "AWS::S3::Bucket", "DatasetBucket")[1]["DeletionPolicy"] == "Delete"
        assert all(f["Properties"]["Environment"]["Variables"]["LINEAGE_LOCK_DAYS"] == "0"
                   for f in functions(template).values())
        assert SECOND_STACK in text(group["Properties"]["LogGroupName"])

"""chalicelib/adapters/aws/sagemaker_jobs.py: the SageMaker training and processing requests the pipeline sends."""
from __future__ import annotations

import json

import pytest

from chalicelib.adapters.aws.sagemaker_jobs import conversion_request, training_request
from chalicelib.contract.training_job import METRIC_DEFINITIONS
from chalicelib.pipeline.records import ConversionSpec, ObjectInfo, TrainingSpec


def _training_spec(use_spot):
    return TrainingSpec("flowers-0123456789abcdef", "img:1", "arn:aws:iam::123456789012:role/r", "s3://d/datasets/flowers/",
                        "s3://a/training/", "s3://a/checkpoints/flowers-0123456789abcdef/", "s3://a/tensorboard/", "ml.g5.xlarge",
                        use_spot, 3600, {"preset": "resnet_v1_50", "max_training_time": "3600"}, METRIC_DEFINITIONS,
                        {"dataset_version": "0123456789abcdef"})


def test_training_request():
    request = training_request(_training_spec(use_spot=True))
    assert request["InputDataConfig"][0]["ChannelName"] == "training"
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://d/datasets/flowers/"
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"] == {"S3Uri": "s3://a/checkpoints/flowers-0123456789abcdef/", "LocalPath": "/opt/ml/checkpoints"}
    assert request["TensorBoardOutputConfig"]["LocalPath"] == "/opt/ml/output/tensorboard"
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    assert {"Key": "dataset_version", "Value": "0123456789abcdef"} in request["Tags"]
    assert all(isinstance(v, str) for v in request["HyperParameters"].values())
    plain = training_request(_training_spec(use_spot=False))
    assert "CheckpointConfig" not in plain and "EnableManagedSpotTraining" not in plain


def test_both_jobs_run_network_isolated():
    """They decode photos anyone who can upload chose: no network inside the container (and so no AWS calls)."""
    assert training_request(_training_spec(use_spot=True))["EnableNetworkIsolation"] is True
    assert training_request(_training_spec(use_spot=False))["EnableNetworkIsolation"] is True
    conversion = ConversionSpec("flowers-0123456789abcdef-convert", "img:1", "arn:aws:iam::123456789012:role/c",
                                "s3://a/training/j/output/model.tar.gz", "s3://d/p/", "s3://a/models/0123456789abcdef/",
                                "", "ml.m5.xlarge", 3600, {})
    assert conversion_request(conversion)["NetworkConfig"] == {"EnableNetworkIsolation": True}


def test_the_feature_cache_s_new_entries_leave_through_model_tar_gz_and_the_conversion_s_output():
    """Training reads the `features` channel and writes new entries into its model folder (no upload: it has no
    network); the conversion job hands them on through a second output, to features/ and nowhere else."""
    spec = TrainingSpec(**dict(_training_spec(use_spot=False).__dict__, feature_cache_uri="s3://a/features/",
                               feature_cache_ready=True))
    request = training_request(spec)
    assert request["Environment"] == {"FLOWERS_FEATURE_CACHE": "/opt/ml/input/data/features",
                                      "FLOWERS_FEATURE_CACHE_NEW": "/opt/ml/model/features"}
    assert request["InputDataConfig"][-1]["ChannelName"] == "features"
    conversion = ConversionSpec("flowers-0123456789abcdef-convert", "img:1", "arn:aws:iam::123456789012:role/c",
                                "s3://a/training/j/output/model.tar.gz", "s3://d/p/", "s3://a/models/0123456789abcdef/",
                                "", "ml.m5.xlarge", 3600, {}, feature_cache_uri="s3://a/features/")
    request = conversion_request(conversion)
    assert request["AppSpecification"]["ContainerEntrypoint"][-2:] == ["--features-out", "/opt/ml/processing/features"]
    assert [o["S3Output"]["S3Uri"] for o in request["ProcessingOutputConfig"]["Outputs"]] == [
        "s3://a/models/0123456789abcdef/", "s3://a/features/"]
    assert request["ProcessingOutputConfig"]["Outputs"][1]["S3Output"]["LocalPath"] == "/opt/ml/processing/features"
    without = conversion_request(ConversionSpec(**dict(conversion.__dict__, feature_cache_uri="")))
    assert len(without["ProcessingOutputConfig"]["Outputs"]) == 1
    assert "--features-out" not in without["AppSpecification"]["ContainerEntrypoint"]


def test_conversion_request_with_and_without_baseline():
    spec = ConversionSpec("flowers-0123456789abcdef-convert", "img:1", "arn:aws:iam::123456789012:role/r",
                          "s3://a/training/j/output/model.tar.gz", "s3://d/p/", "s3://a/models/0123456789abcdef/",
                          "", "ml.m5.xlarge", 3600, {})
    request = conversion_request(spec)
    assert request["AppSpecification"]["ContainerEntrypoint"] == [
        "convert", "/opt/ml/processing/model", "/opt/ml/processing/output", "--data", "/opt/ml/processing/data"]
    assert request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == "s3://a/models/0123456789abcdef/"
    with_baseline = conversion_request(ConversionSpec(**dict(spec.__dict__, baseline_uri="s3://a/models/feedfeedfeedfeed/")))
    assert with_baseline["AppSpecification"]["ContainerEntrypoint"][-2:] == ["--baseline", "/opt/ml/processing/baseline"]
    assert with_baseline["ProcessingInputs"][-1]["S3Input"]["S3Uri"] == "s3://a/models/feedfeedfeedfeed/"


def test_requests_read_the_runs_manifest_when_it_has_one():
    from chalicelib.pipeline import manifest

    spec = _training_spec(use_spot=False)
    assert training_request(spec)["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
    assert "Environment" not in training_request(spec)  # a run launched before manifests: the prefix, as before
    with_manifest = TrainingSpec(**dict(spec.__dict__, manifest_uri="s3://a/manifests/v.json", manifest_sha256="ff" * 32,
                                        channel_manifest_uri="s3://a/manifests/v.manifest"))
    request = training_request(with_manifest)
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"] == {
        "S3DataType": "ManifestFile", "S3Uri": "s3://a/manifests/v.manifest", "S3DataDistributionType": "FullyReplicated"}
    assert request["Environment"] == {"FLOWERS_MANIFEST_URI": "s3://a/manifests/v.json", "FLOWERS_MANIFEST_SHA256": "ff" * 32}
    conversion = ConversionSpec("flowers-0123456789abcdef-convert", "img:1", "arn:aws:iam::123456789012:role/r",
                                "s3://a/training/j/output/model.tar.gz", "s3://d/p/", "s3://a/models/0123456789abcdef/",
                                "", "ml.m5.xlarge", 3600, {}, manifest_uri="s3://a/manifests/v.json",
                                channel_manifest_uri="s3://a/manifests/v.manifest")
    data = conversion_request(conversion)["ProcessingInputs"][1]
    assert data["InputName"] == "data" and data["S3Input"]["S3DataType"] == "ManifestFile"
    assert data["S3Input"]["S3Uri"] == "s3://a/manifests/v.manifest"

    # The record: sorted by key, the same bytes for the same listing; S3's "null" version id is no version id.
    objects = [ObjectInfo("roses/b.jpg", '"bb"', 2, "null"), ObjectInfo("daisy/a.jpg", "aa", 1, "3HL4kqtJlcpXroDTDmJ")]
    raw = manifest.record("s3://d/p/", "0123456789abcdef", objects)
    assert raw == manifest.record("s3://d/p/", "0123456789abcdef", list(reversed(objects)))
    parsed = manifest.parse(raw)
    assert parsed["files"] == [{"key": "daisy/a.jpg", "etag": "aa", "size": 1, "version_id": "3HL4kqtJlcpXroDTDmJ"},
                               {"key": "roses/b.jpg", "etag": "bb", "size": 2}]
    assert (parsed["count"], parsed["bytes"], parsed["dataset_uri"]) == (2, 3, "s3://d/p/")
    assert json.loads(manifest.channel("s3://d/p/", objects)) == [{"prefix": "s3://d/p/"}, "daisy/a.jpg", "roses/b.jpg"]
    with pytest.raises(manifest.ManifestError):
        manifest.parse(b'[{"prefix": "s3://d/p/"}]')
    assert manifest.recorded({"manifest": {"uri": "s3://a/m.json", "sha256": "x"}}) == ("s3://a/m.json", "x")
    assert manifest.recorded({"manifest": None}) == manifest.recorded({}) == ("", "")

"""GET /status shows the last run's validation report: every file its training skipped, scan and
decode alike, with reason and detail. In the cloud the report is read back from the output.tar.gz
SageMaker uploads from $SM_OUTPUT_DATA_DIR; here its contents are the real training code's report."""
from __future__ import annotations

import json

import pytest

from data_fixtures import BAD_UPLOADS, copy_photos, write_bad_uploads
from flowers_cli.output import format_status
from pipeline_fixtures import aws, output_archive, processing_state_event, training_state_event  # noqa: F401  (fixture)
from test_pipeline_aws import World


@pytest.fixture
def world(aws):  # noqa: F811
    from chalice.test import Client

    import app as chalice_app

    with Client(chalice_app.app) as client:
        yield World(aws, client)


def real_report(tmp_path) -> dict:
    """validation.json as the training image writes it for a data set holding the six kinds of bad upload."""
    from training import dataset as ds

    root = copy_photos(tmp_path / "data", 3, classes=("daisy", "roses"), layout="modelarts")
    write_bad_uploads(root)
    (root / "notes.txt").write_text("not a label: no photo of that name")
    data = ds.load(root, 32, min_images_per_class=1)
    ds.write_report(data, tmp_path / "out" / "validation.json")
    return json.loads((tmp_path / "out" / "validation.json").read_text())


def put_job_output(world, job: str, report: dict) -> str:
    """Where SageMaker writes it: <OutputDataConfig.S3OutputPath of the job's request><job>/output/output.tar.gz."""
    described = world.aws.sagemaker.describe_training_job(TrainingJobName=job)
    bucket, _, prefix = described["OutputDataConfig"]["S3OutputPath"][len("s3://"):].partition("/")
    key = f"{prefix.rstrip('/')}/{job}/output/output.tar.gz".lstrip("/")
    world.aws.s3.put_object(Bucket=bucket, Key=key, Body=output_archive(report))
    return f"s3://{bucket}/{key}"


def test_cloud_status_lists_every_skipped_file_from_the_jobs_output(world, tmp_path):
    report = real_report(tmp_path)
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    first = world.tick()
    assert world.status()["validation"] is None  # training: SageMaker uploads the archive at the job's end

    put_job_output(world, first["job"], report)
    world.sagemaker_event(training_state_event(first["job"], "Completed"))
    validation = world.status()["validation"]  # converting: the running job's report
    assert validation["training_job"] == first["job"] and validation["skipped_count"] == 6
    assert {s["file"]: s["reason"] for s in validation["skipped"]} == BAD_UPLOADS
    assert all(s["detail"] for s in validation["skipped"])
    assert "truncated" in next(s["detail"] for s in validation["skipped"] if s["file"] == "bad_truncated.jpg")
    assert validation["skipped_by_reason"] == {reason: 1 for reason in sorted(BAD_UPLOADS.values())}
    assert validation["skipped_not_listed"] == 0 and validation["usable_images"] == 6
    assert validation["ignored_files"] == ["notes.txt"] and validation["dataset_version"] == report["dataset_version"]

    world.write_conversion_output(first["version"], 0.9)
    world.sagemaker_event(processing_state_event(first["job"] + "-convert", "Completed"))
    # The next run trains: its report comes at its end; until then the last run's shows.
    world.upload(["daisy/c.jpg"])
    world.now += 601
    second = world.tick()
    status = world.status()
    assert status["running_job"]["training_job"] == second["job"] and status["validation"]["training_job"] == first["job"]
    text = format_status(status)
    for file, reason in BAD_UPLOADS.items():
        assert f"  {file}: {reason}" in text
    assert "6 used, 6 skipped" in text

    # A run that fails on its data (too few photos) still has its report, and it is the one shown.
    put_job_output(world, second["job"], dict(report, skipped=report["skipped"][:1]))
    world.sagemaker_event(training_state_event(second["job"], "Failed", reason="AlgorithmError: too few images"))
    validation = world.status()["validation"]
    assert validation["training_job"] == second["job"] and validation["skipped_count"] == 1

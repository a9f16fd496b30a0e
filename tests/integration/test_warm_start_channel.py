"""Incremental retraining's warm start (issue 21): the job specification on moto (the production model's training
output as the `production` channel, the decision in the job's environment), and training's side
(training/incremental.py: the channel's model.tar.gz unpacked, the shorter schedule, metadata's start_from).
The decision itself: tests/unit/test_warm_start.py."""
from __future__ import annotations

import io
import json
import tarfile

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.contract.warm_start import START_FROM_ENV, StartFrom
from pipeline_fixtures import aws, created, training_state_event  # noqa: F401  (fixtures)
from test_pipeline_aws import World


def test_the_second_run_gets_production_as_a_channel_on_moto(aws, created):  # noqa: F811
    """CreateTrainingJob as sent to (moto's) SageMaker: moto keeps no Environment, so the requests are recorded."""

    def _job(world, name):
        assert world.aws.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]  # SageMaker has it
        return created[name]

    with Client(chalice_app.app) as client:
        world = World(aws, client)
        world.upload(["daisy/a.jpg", "roses/b.jpg"])
        world.now += 601
        first = world.tick()
        described = _job(world, first["job"])
        assert [c["ChannelName"] for c in described["InputDataConfig"]] == ["training"]  # nothing in production yet
        assert json.loads(described["Environment"][START_FROM_ENV]) == {
            "kind": "imagenet", "reason": "no production model yet", "chain": 0, "production_version": ""}
        world.sagemaker_event(training_state_event(first["job"], "Completed"))
        world.write_conversion_output(first["version"], 0.91)
        # what training wrote: its job, and that it was a full run
        key = f"models/{first['version']}/metadata.json"
        document = json.loads(world.aws.s3.get_object(Bucket=world.aws.artifacts, Key=key)["Body"].read())
        document.update(source_job=first["job"], training={"start_from": {"kind": "imagenet", "warm": False, "chain": 0}})
        world.aws.s3.put_object(Bucket=world.aws.artifacts, Key=key, Body=json.dumps(document).encode())
        from pipeline_fixtures import processing_state_event
        assert world.sagemaker_event(processing_state_event(first["job"] + "-convert", "Completed"))["model_status"] == "approved"

        world.upload(["daisy/c.jpg"])  # same classes, but the trained weights expired (the artifacts' lifecycle)
        world.now += 601
        expired = world.tick()
        described = _job(world, expired["job"])
        assert [c["ChannelName"] for c in described["InputDataConfig"]] == ["training"]
        assert "trained weights are not available" in json.loads(described["Environment"][START_FROM_ENV])["reason"]
        world.sagemaker_event(training_state_event(expired["job"], "Failed", "boom"))
        archive = f"training/{first['job']}/output/model.tar.gz"  # what SageMaker uploaded at the end of the first job
        world.aws.s3.put_object(Bucket=world.aws.artifacts, Key=archive, Body=b"tar.gz bytes")

        world.upload(["daisy/c2.jpg"])  # same classes, weights there: a warm start
        world.now += 10_000
        second = world.tick()
        while "job" not in second:
            world.now += 10_000
            second = world.tick()
        described = _job(world, second["job"])
        channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in described["InputDataConfig"]}
        assert channels["production"] == f"s3://flowers-artifacts/training/{first['job']}/output/model.tar.gz"
        start = json.loads(described["Environment"][START_FROM_ENV])
        assert (start["kind"], start["chain"], start["production_version"]) == ("production", 1, first["version"])
        assert described["Environment"]["FLOWERS_MANIFEST_URI"].endswith(f"{second['version']}.json")  # still there
        world.sagemaker_event(training_state_event(second["job"], "Failed", "boom"))

        world.upload(["tulips/d.jpg"])  # a new class: from ImageNet
        world.now += 10_000
        third = world.tick()
        while "job" not in third:  # the failed run's retry or the new version's run
            world.now += 10_000
            third = world.tick()
        described = _job(world, third["job"])
        assert [c["ChannelName"] for c in described["InputDataConfig"]] == ["training"]
        assert "added tulips" in json.loads(described["Environment"][START_FROM_ENV])["reason"]


def test_training_unpacks_the_channel_and_shortens_its_schedule(tmp_path):
    from training import incremental
    from training.hyperparameters import Hyperparameters

    channel = tmp_path / "production"
    channel.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("model.keras", b"keras-bytes"), ("labels.txt", b"daisy\nroses\n"), ("saved_model/x.pb", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    (channel / "model.tar.gz").write_bytes(buffer.getvalue())
    hp = Hyperparameters(preset="tiny_cnn", epochs=6, head_epochs=25)
    folder = incremental.source(hp, {"SM_CHANNEL_PRODUCTION": str(channel)})
    assert sorted(p.name for p in __import__("pathlib").Path(folder).iterdir()) == ["labels.txt", "model.keras"]
    assert incremental.source(hp, {}) == ""
    assert incremental.source(Hyperparameters(preset="tiny_cnn", warm_start="none"), {"SM_CHANNEL_PRODUCTION": str(channel)}) == ""
    assert incremental.source(Hyperparameters(preset="tiny_cnn", warm_start=str(tmp_path)), {"SM_CHANNEL_PRODUCTION": "x"}) == str(tmp_path)

    short = incremental.schedule(hp, "/some/folder")
    assert (short.head_epochs, short.epochs) == (8, 1)
    assert short.fine_tune_lr_scale == pytest.approx(0.2 * hp.resolved_fine_tune_lr_scale())  # gentler: the backbone is tuned already
    assert incremental.schedule(Hyperparameters(preset="tiny_cnn", epochs=20), "/f").epochs == 3
    assert incremental.schedule(hp, "skipped: classes differ") == hp and incremental.schedule(hp, "") == hp
    assert incremental.schedule(Hyperparameters(preset="tiny_cnn", epochs=0), "/f").epochs == 0  # head only stays head only

    decision = StartFrom("production", "same classes as production model v1", 2, "v1", "s3://m").as_json()
    record = incremental.record("/some/folder", short, {START_FROM_ENV: decision})
    assert record == {"kind": "production", "warm": True, "chain": 2, "production_version": "v1", "head_epochs": 8, "epochs": 1,
                      "fine_tune_lr_scale": short.fine_tune_lr_scale, "reason": "same classes as production model v1"}
    failed = incremental.record("skipped: classes differ", hp, {START_FROM_ENV: decision})
    assert failed["kind"] == "imagenet" and failed["chain"] == 0 and not failed["warm"]
    assert failed["reason"].startswith("skipped: classes differ")
    assert incremental.record("", hp, {}) == {"kind": "imagenet", "warm": False, "chain": 0, "reason": "a full run"}
    forced = incremental.record("", Hyperparameters(preset="tiny_cnn", warm_start="none"), {START_FROM_ENV: decision})
    assert forced["kind"] == "imagenet" and "forced" in forced["reason"]  # flowers up -H warm_start=none

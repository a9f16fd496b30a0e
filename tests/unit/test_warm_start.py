"""Incremental retraining's warm start (issue 21): the pure decision (chalicelib/contract/warm_start.py), the job
specification on moto (the production model's training output as the `production` channel, the decision
in the job's environment), and training's side (training/incremental.py: the channel's model.tar.gz
unpacked, the shorter schedule, metadata's start_from)."""
from __future__ import annotations

import io
import json
import tarfile

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib import settings
from chalicelib.contract.warm_start import (
    CLASSES_DIFFER,
    FORCED_BY_HYPERPARAMETER,
    FORCED_FULL,
    START_FROM_ENV,
    StartFrom,
    choose,
    dataset_classes,
    folder_to_load,
    recorded,
    same_classes,
    skipped,
    started_warm,
    training_hyperparameters,
)
from pipeline_fixtures import aws, created, training_state_event  # noqa: F401  (fixtures)
from test_pipeline_aws import World

LABELS = ["daisy", "roses"]


def meta(labels=LABELS, chain=None, warm=True):
    training = {} if chain is None else {"start_from": {"kind": "production" if warm else "imagenet", "warm": warm, "chain": chain}}
    return {"labels": list(labels), "source_job": "job-1", "training": training}


def test_same_classes_warm_start_from_production_and_the_chain_counts():
    decision = choose(LABELS, "v1", meta(), "s3://a/training/job-1/output/model.tar.gz", 5)
    assert decision.warm and decision.chain == 1 and decision.production_version == "v1"
    assert decision.model_uri == "s3://a/training/job-1/output/model.tar.gz" and "same classes" in decision.reason
    assert choose(LABELS, "v2", meta(chain=3), "s3://m", 5).chain == 4
    assert choose(LABELS, "v2", meta(chain=3, warm=False), "s3://m", 5).chain == 1  # production itself was a full run


def test_every_nth_run_is_a_full_one():
    """FULL_RETRAIN_EVERY=5: one full run, then four warm ones, then a full one again."""
    chain, kinds = 0, []
    for run in range(11):
        decision = choose(LABELS, f"v{run}", meta(chain=chain) if run else None, "s3://m", 5) if run else choose(LABELS, "", None, "", 5)
        kinds.append(decision.kind)
        chain = decision.chain
    assert kinds == ["imagenet"] + ["production"] * 4 + ["imagenet"] + ["production"] * 4 + ["imagenet"]
    full = choose(LABELS, "v4", meta(chain=4), "s3://m", 5)
    assert not full.warm and "periodic full retrain" in full.reason and full.model_uri == ""
    assert not choose(LABELS, "v1", meta(), "s3://m", 1).warm  # 1: every run is a full one
    forced = choose(LABELS, "v1", meta(), "s3://m", 5, "none")  # training.json's {"warm_start": "none"}
    assert not forced.warm and "forced" in forced.reason
    assert not choose(LABELS, "v1", meta(), "s3://m", 5, "/opt/ml/input/data/mine").warm  # its own folder: training's business


def test_a_run_forced_full_by_hand_starts_from_imagenet_whatever_else_holds():
    """flowers retrain --full / POST /runs {"full": true}: this run from ImageNet, with the reason; without it, the same
    facts warm-start (so the flag, not the facts, made the difference)."""
    assert choose(LABELS, "v1", meta(chain=1), "s3://m", 5).warm
    for hyperparameter in ("", "none", "/opt/ml/input/data/mine"):
        forced = choose(LABELS, "v1", meta(chain=1), "s3://m", 5, hyperparameter, forced_full=True)
        assert forced == StartFrom("imagenet", FORCED_FULL) and not forced.warm and forced.model_uri == "" and forced.chain == 0
    assert "flowers retrain --full" in FORCED_FULL
    assert json.loads(choose([], "", None, "", 1, forced_full=True).as_json()) == {
        "kind": "imagenet", "reason": FORCED_FULL, "chain": 0, "production_version": ""}  # what FLOWERS_START_FROM carries


def test_a_forced_full_run_keeps_training_from_loading_a_folder_the_hyperparameter_names():
    mine = {"preset": "mobilenet_v2", "warm_start": "/opt/ml/input/data/mine"}
    assert training_hyperparameters(mine, forced_full=True) == {"preset": "mobilenet_v2", "warm_start": "none"}
    assert training_hyperparameters(mine, forced_full=False) == mine  # not forced: training's business, as before
    plain = {"preset": "mobilenet_v2"}
    assert training_hyperparameters(plain, forced_full=True) == plain  # nothing to stop: metadata keeps FORCED_FULL's reason
    assert training_hyperparameters({"warm_start": "None"}, forced_full=True) == {"warm_start": "None"}


@pytest.mark.parametrize("classes, version, metadata, uri, why", [
    (LABELS, "", None, "", "no production model"),
    (["daisy", "roses", "tulips"], "v1", meta(), "s3://m", "added tulips"),
    (["daisy"], "v1", meta(), "s3://m", "removed roses"),
    (LABELS, "v1", None, "s3://m", "no readable metadata.json"),
    (LABELS, "v1", meta(), "", "trained weights are not available"),
])
def test_otherwise_imagenet_and_the_reason_says_why(classes, version, metadata, uri, why):
    decision = choose(classes, version, metadata, uri, 5)
    assert decision.kind == "imagenet" and not decision.warm and why in decision.reason and decision.model_uri == ""


def test_dataset_classes_are_the_class_folders_and_name_txt_labels_leave_the_check_to_training():
    assert dataset_classes(["roses/a.jpg", "daisy/b.jpg", "roses/c.jpg", "training.json"]) == ["daisy", "roses"]
    assert dataset_classes(["a.jpg", "a.txt"]) == []
    decision = choose([], "v1", meta(), "s3://m", 5)
    assert decision.warm and "training compares them" in decision.reason


def test_one_class_rule_for_the_pipeline_and_training():
    """Same names in the same order (the head's outputs are the sorted labels): the pipeline applies it to class
    folders, training to the labels it read (name.txt data sets, a warm_start folder)."""
    assert same_classes(LABELS, list(LABELS))
    assert not same_classes(["roses", "daisy"], LABELS) and not same_classes(["daisy"], LABELS)
    reordered = choose(LABELS, "v1", meta(labels=["roses", "daisy"]), "s3://m", 5)
    assert not reordered.warm and "their order differs" in reordered.reason


def test_what_the_job_makes_of_the_decision():
    channel = "/opt/ml/input/data/production"
    assert folder_to_load("", channel) == channel  # the pipeline passed production: load it
    assert folder_to_load("", "") == ""  # a full run: the pipeline passed no channel
    assert folder_to_load("none", channel) == "" and folder_to_load(" NONE ", channel) == ""  # forced full, whatever was passed
    assert folder_to_load("/opt/ml/mine", channel) == "/opt/ml/mine"  # the hyperparameter's own model wins
    assert skipped(CLASSES_DIFFER) == "skipped: classes differ"
    assert started_warm(channel) and not started_warm("") and not started_warm(skipped("bad file"))
    decision = StartFrom("imagenet", "the warm_start hyperparameter names its own model (/opt/ml/mine)").as_json()
    mine = recorded(decision, "/opt/ml/mine", "/opt/ml/mine", {"head_epochs": 8, "epochs": 1, "fine_tune_lr_scale": 0.02})
    assert (mine["kind"], mine["warm"], mine["chain"], mine["head_epochs"]) == ("warm_start", True, 1, 8)
    assert recorded("not json", "", "none", {})["reason"] == FORCED_BY_HYPERPARAMETER


def test_full_retrain_every_setting(tmp_path):
    assert settings.Settings().full_retrain_every == 5
    assert settings.from_environ({"FLOWERS_HOME": str(tmp_path), "FULL_RETRAIN_EVERY": "3"}).full_retrain_every == 3
    with pytest.raises(settings.SettingsError, match="FULL_RETRAIN_EVERY"):
        settings.from_environ({"FLOWERS_HOME": str(tmp_path), "FULL_RETRAIN_EVERY": "0"})
    assert "full_retrain_every" in settings.variables()  # the Lambdas read it: the stack sets it


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


def test_flowers_up_warm_starts_the_second_run_from_the_first_model(tmp_path):
    """A real `flowers up`: the first run starts from scratch; photos of the same classes added later give a
    run that starts from the approved model's weights (its training output folder as SM_CHANNEL_PRODUCTION),
    trains the shorter schedule, computes backbone features only for the new photos, and says so in metadata.json."""
    from data_fixtures import require_photos
    from local_fixtures import TINY_UP, Up, flowers, modelarts_photos

    require_photos()
    home = tmp_path / "home"
    modelarts_photos(tmp_path / "set1", per_class=6)
    modelarts_photos(tmp_path / "set2", per_class=2, start=6)
    up = Up(home, *TINY_UP)
    try:
        assert flowers(home, "push", str(tmp_path / "set1"), "--home", str(home), "--quiet").returncode == 0

        def models():
            return [m for m in up.get("models").json()["models"] if m["status"] in ("approved", "pending")]

        (first,) = up.wait_for(models, 150, "the first model")
        assert first["status"] == "approved"
        assert flowers(home, "push", str(tmp_path / "set2"), "--home", str(home), "--quiet").returncode == 0
        second = up.wait_for(lambda: next((m for m in models() if m["version"] != first["version"]), None), 150, "the second model")
        before = json.loads((home / "artifacts" / "models" / first["version"] / "metadata.json").read_text())
        after = json.loads((home / "artifacts" / "models" / second["version"] / "metadata.json").read_text())
        assert before["training"]["start_from"] == {"kind": "imagenet", "warm": False, "chain": 0, "reason": "no production model yet",
                                                    "production_version": ""}
        start = after["training"]["start_from"]
        assert (start["kind"], start["warm"], start["chain"], start["production_version"]) == ("production", True, 1, first["version"])
        assert "training compares them" in start["reason"]  # ModelArts layout: the labels are in name.txt files
        assert (start["head_epochs"], start["epochs"]) == (1, 1)  # TINY_UP's 2 and 1, shortened
        channel = home / "artifacts" / "training" / before["source_job"] / "attempt-1" / "output" / "model"
        assert after["training"]["warm_start"] == str(channel) and (channel / "model.keras").exists()
        log = (home / "artifacts" / "training" / after["source_job"] / "log.txt").read_text()
        assert f"warm start from {channel}" in log
        # The first run's calibration cached every photo's features of the backbone this run starts from:
        # phase 1 computes only the new photos (no mirror images after a warm start), and reads the others.
        old, new = (sum(1 for p in (tmp_path / name).iterdir() if p.suffix == ".jpg") for name in ("set1", "set2"))
        phase1 = next(line for line in log.splitlines() if line.startswith("feature cache:") and line.endswith("(phase 1)"))
        assert phase1.startswith(f"feature cache: {old} photo(s) from") and f", {new} computed" in phase1, phase1
    finally:
        up.stop()

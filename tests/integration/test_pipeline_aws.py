"""The pipeline end to end against moto, driven through the Chalice handlers with the
documented event shapes: S3 notifications in SQS records, the scheduled tick, SageMaker
training/processing state changes from EventBridge."""
from __future__ import annotations

import hashlib
import json
import random

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib import services
from pipeline_fixtures import (
    aws,  # noqa: F401  (fixture)
    processing_state_event,
    s3_body,
    s3_record,
    s3_test_event_body,
    sqs_event,
    training_state_event,
)

T0 = 1_700_000_000.0


class World:
    """The deployed functions, a controllable clock and helpers to drive them."""

    def __init__(self, aws_world, client):
        self.aws = aws_world
        self.client = client
        self.now = T0
        svc = services.get()
        svc.orchestrator.clock = svc.read_model.clock = lambda: self.now

    def upload(self, keys, at=None, duplicate=False, content=b"photo"):
        """Put objects in the data set bucket and deliver their notifications (one per SQS message)."""
        at = self.now if at is None else at
        records = []
        for i, key in enumerate(keys):
            full = self.aws.prefix + key
            body = content + key.encode()
            self.aws.s3.put_object(Bucket=self.aws.dataset_bucket, Key=full, Body=body)
            records.append(s3_record(self.aws.dataset_bucket, full, at + i * 0.001, etag=hashlib.md5(body).hexdigest()))
        bodies = [s3_body(r) for r in records]
        if duplicate:
            bodies = bodies + bodies
        return self.deliver(bodies)

    def deliver(self, bodies, batch=100):
        results = []
        for start in range(0, len(bodies), batch):
            results.append(self.client.lambda_.invoke("on_upload", sqs_event(bodies[start : start + batch])).payload)
        return results

    def tick(self):
        return self.client.lambda_.invoke("tick", {"version": "0", "id": "tick", "detail-type": "Scheduled Event",
                                                   "source": "aws.events", "account": "123456789012", "time": "2024-01-01T00:00:00Z",
                                                   "region": "us-east-1", "resources": [], "detail": {}}).payload

    def sagemaker_event(self, event):
        return self.client.lambda_.invoke("on_sagemaker_job", event).payload

    def training_jobs(self):
        return [j["TrainingJobName"] for j in self.aws.sagemaker.list_training_jobs()["TrainingJobSummaries"]]

    def processing_jobs(self):
        return [j["ProcessingJobName"] for j in self.aws.sagemaker.list_processing_jobs()["ProcessingJobSummaries"]]

    def status(self):
        return self.client.http.get("/status").json_body

    def write_conversion_output(self, version, accuracy, baseline=None, labels=("daisy", "roses"), manifest=None):
        """What the convert entrypoint writes to s3://ARTIFACTS/models/<version>/ (`manifest`: what training
        wrote into metadata.json from its environment, and the conversion kept)."""
        model = f"tflite-bytes-{version}".encode()
        metrics = {"test": {"accuracy": accuracy, "count": 150, "evaluated_on": "test"}, "val_accuracy": accuracy}
        if baseline is not None:
            metrics["baseline"] = baseline
        metadata = {"labels": list(labels), "preset": "mobilenet_v2", "image_size": 224, "quantization": "int8",
                    "input": {"shape": [1, 224, 224, 3], "dtype": "float32", "range": [0, 255]},
                    "model": {"file": "model.tflite", "sha256": hashlib.sha256(model).hexdigest(), "size_bytes": len(model)},
                    "metrics": metrics, "dataset_version": "content-" + version, "created_at": "2024-01-01T00:00:00+00:00"}
        if manifest is not None:
            metadata["manifest"] = manifest
        prefix = f"models/{version}/"
        self.aws.s3.put_object(Bucket=self.aws.artifacts, Key=prefix + "model.tflite", Body=model)
        self.aws.s3.put_object(Bucket=self.aws.artifacts, Key=prefix + "labels.txt", Body="\n".join(labels).encode())
        self.aws.s3.put_object(Bucket=self.aws.artifacts, Key=prefix + "metadata.json", Body=json.dumps(metadata).encode())

    def finish_run(self, accuracy=0.9, baseline=None):
        """Drive the running run through training Completed -> conversion Completed."""
        running = self.status()["running_job"]
        job, version = running["training_job"], running["version"]
        self.sagemaker_event(training_state_event(job, "Completed"))
        self.write_conversion_output(version, accuracy, baseline)
        return version, self.sagemaker_event(processing_state_event(job + "-convert", "Completed"))

    def packages(self):
        return self.aws.sagemaker.list_model_packages(ModelPackageGroupName="flowers", SortBy="CreationTime",
                                                      SortOrder="Descending")["ModelPackageSummaryList"]


@pytest.fixture
def world(aws):  # noqa: F811
    with Client(chalice_app.app) as client:
        yield World(aws, client)


def test_uploads_then_quiet_tick_start_one_training_job(world):
    result = world.upload([f"daisy/{i}.jpg" for i in range(3)] + [f"roses/{i}.jpg" for i in range(3)], duplicate=True)
    world.deliver([s3_test_event_body(world.aws.dataset_bucket)])
    assert result[0]["new"] == 6 and result[0]["changes"] == 12
    assert world.status()["pending_uploads"] == 6

    world.now += 599
    assert world.tick()["action"] == "wait"
    assert world.training_jobs() == []
    world.now += 2
    started = world.tick()
    assert started["action"] == "started"
    assert world.tick()["action"] == "busy"  # a second (or replayed) tick
    assert world.training_jobs() == [started["job"]]

    job = world.aws.sagemaker.describe_training_job(TrainingJobName=started["job"])
    assert job["RoleArn"] == world.aws.env["SAGEMAKER_ROLE_ARN"]
    assert job["AlgorithmSpecification"]["TrainingImage"] == world.aws.env["TRAINING_IMAGE_URI"]
    # (moto answers its own MetricDefinitions; the request builder's are checked in tests/unit/test_sagemaker_jobs.py)
    assert job["InputDataConfig"][0]["ChannelName"] == "training"
    # Exactly the listed photos (the run's manifest), not the live prefix: test_the_run_trains_on_its_manifest.
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == \
        f"s3://flowers-artifacts/manifests/{started['version']}.manifest"
    assert job["OutputDataConfig"]["S3OutputPath"] == "s3://flowers-artifacts/training/"
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600
    assert job["HyperParameters"] == {"preset": "efficientnet_lite1", "max_training_time": "3600"}
    assert job["TensorBoardOutputConfig"]["S3OutputPath"] == "s3://flowers-artifacts/tensorboard/"
    tags = world.aws.sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    assert {"Key": "dataset_version", "Value": started["version"]} in tags
    status = world.status()
    assert status["pending_uploads"] == 0 and status["running_job"]["stage"] == "training"
    assert status["dataset"]["version"] == started["version"]


def test_replayed_and_shuffled_events_count_once(world):
    keys = [f"tulips/{i}.jpg" for i in range(250)]
    records = []
    for i, key in enumerate(keys):
        world.aws.s3.put_object(Bucket=world.aws.dataset_bucket, Key=world.aws.prefix + key, Body=b"x")
        records.append(s3_record(world.aws.dataset_bucket, world.aws.prefix + key, T0 - 1000 + i))
    bodies = [s3_body(r) for r in records] * 3  # every event delivered three times
    random.Random(7).shuffle(bodies)
    world.deliver(bodies, batch=100)
    status = world.status()
    assert status["pending_uploads"] == 250
    assert status["last_upload_at"].startswith("2023-11-14T22:")  # the latest event time, whatever the order
    latest = max(r["eventTime"] for r in records)
    assert world.status()["last_upload_at"][:19] == latest[:19]
    for _ in range(3):
        world.tick()
    assert len(world.training_jobs()) == 1


def test_burst_of_3000_uploads_gives_one_run(world):
    bodies = []
    for i in range(3000):
        key = f"{world.aws.prefix}daisy/burst-{i}.jpg"
        world.aws.s3.put_object(Bucket=world.aws.dataset_bucket, Key=key, Body=b"b%d" % i)
        bodies.append(s3_body(s3_record(world.aws.dataset_bucket, key, T0 + i * 0.1)))
    ticks = []
    for start in range(0, 3000, 500):  # the burst lasts 300 s; the tick runs every minute meanwhile
        world.deliver(bodies[start : start + 500], batch=100)
        world.now = T0 + (start + 500) * 0.1
        ticks.append(world.tick()["action"])
    assert world.status()["pending_uploads"] == 3000
    for _ in range(12):
        world.now += 60
        ticks.append(world.tick()["action"])
    assert ticks.count("started") == 1 and len(world.training_jobs()) == 1


def test_full_cycle_conversion_registration_and_gate(world):
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    first = world.tick()
    job = first["job"]
    # Completed, delivered twice: one conversion job.
    world.sagemaker_event(training_state_event(job, "Completed"))
    world.sagemaker_event(training_state_event(job, "Completed"))
    assert world.processing_jobs() == [job + "-convert"]
    conversion = world.aws.sagemaker.describe_processing_job(ProcessingJobName=job + "-convert")
    assert conversion["AppSpecification"]["ContainerEntrypoint"] == [
        "convert", "/opt/ml/processing/model", "/opt/ml/processing/output", "--data", "/opt/ml/processing/data",
        "--features-out", "/opt/ml/processing/features"]
    # Its own role, not the training jobs': it writes models/ (and hands the feature cache's new entries on).
    assert conversion["RoleArn"] == world.aws.env["CONVERSION_ROLE_ARN"] != world.aws.env["SAGEMAKER_ROLE_ARN"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in conversion["ProcessingInputs"]}
    assert inputs == {"model": f"s3://flowers-artifacts/training/{job}/output/model.tar.gz",
                      "data": f"s3://flowers-artifacts/manifests/{first['version']}.manifest"}
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in conversion["ProcessingOutputConfig"]["Outputs"]}
    assert outputs == {"model": f"s3://flowers-artifacts/models/{first['version']}/", "features": "s3://flowers-artifacts/features/"}
    assert world.status()["running_job"]["stage"] == "converting"

    world.write_conversion_output(first["version"], 0.91)
    done = world.sagemaker_event(processing_state_event(job + "-convert", "Completed"))
    world.sagemaker_event(processing_state_event(job + "-convert", "Completed"))  # replay: no second package
    assert done["action"] == "registered" and done["model_status"] == "approved"
    packages = world.packages()
    assert len(packages) == 1 and packages[0]["ModelApprovalStatus"] == "Approved"
    described = world.aws.sagemaker.describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])
    props = described["CustomerMetadataProperties"]
    assert props["model_uri"] == f"s3://flowers-artifacts/models/{first['version']}/model.tflite"
    assert props["labels_uri"].endswith("/labels.txt") and props["metadata_uri"].endswith("/metadata.json")
    assert props["sha256"] == hashlib.sha256(f"tflite-bytes-{first['version']}".encode()).hexdigest()
    assert props["dataset_version"] == first["version"] and float(props["test_accuracy"]) == pytest.approx(0.91)
    status = world.status()
    assert status["running_job"] is None and status["last_outcome"]["status"] == "registered"

    # Second run: the conversion scored production on the same photos; 1 point worse -> pending.
    world.upload(["daisy/c.jpg"])
    world.now += 601
    second = world.tick()
    world.sagemaker_event(training_state_event(second["job"], "Completed"))
    conversion = world.aws.sagemaker.describe_processing_job(ProcessingJobName=second["job"] + "-convert")
    assert conversion["AppSpecification"]["ContainerEntrypoint"][-4:] == [
        "--baseline", "/opt/ml/processing/baseline", "--features-out", "/opt/ml/processing/features"]
    assert {i["InputName"]: i["S3Input"]["S3Uri"] for i in conversion["ProcessingInputs"]}["baseline"] == \
        f"s3://flowers-artifacts/models/{first['version']}/"
    world.write_conversion_output(second["version"], 0.90, baseline={"accuracy": 0.91})
    done = world.sagemaker_event(processing_state_event(second["job"] + "-convert", "Completed"))
    assert done["model_status"] == "pending" and "point below production" in done["reason"]
    models = world.client.http.get("/models").json_body["models"]
    assert [(m["version"], m["status"]) for m in models] == [(second["version"], "pending"), (first["version"], "approved")]
    assert models[0]["metrics"]["test_accuracy"] == pytest.approx(0.90)


def test_training_failure_is_recorded_and_pending_uploads_run_next(world):
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    first = world.tick()
    world.now += 100
    world.upload(["daisy/during-1.jpg", "daisy/during-2.jpg"])  # during the run
    world.now += 700
    result = world.sagemaker_event(training_state_event(first["job"], "Failed", reason="AlgorithmError: data set: too few images"))
    assert result["action"] == "failed"
    assert result["next"]["action"] == "started"  # the uploads were quiet long enough: the next run starts at once
    status = world.status()
    assert "AlgorithmError" in world.client.http.get("/models/detail").json_body["models"][-1]["reason"]
    failed = world.client.http.get("/models").json_body["models"][-1]  # a key caller's row: no job, no error text
    assert failed["reason"] == "the run failed; operators see why" and "training_job" not in failed
    assert len(world.training_jobs()) == 2 and status["running_job"]["version"] != first["version"]
    # A replay of the failure changes nothing.
    assert world.sagemaker_event(training_state_event(first["job"], "Failed", reason="x"))["action"] == "ignored"


def test_uploads_during_a_run_give_exactly_one_further_run(world):
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    world.tick()
    for i in range(5):  # several uploads while training
        world.now += 30
        world.upload([f"roses/during-{i}.jpg"])
    world.now += 30
    world.finish_run()
    for _ in range(20):
        world.now += 60
        world.tick()
    assert len(world.training_jobs()) == 2
    world.finish_run(baseline={"accuracy": 0.9})
    for _ in range(20):
        world.now += 60
        assert world.tick()["action"] == "idle"
    assert len(world.training_jobs()) == 2


def test_one_job_per_dataset_version(world):
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    world.tick()
    world.finish_run()
    # Upload then delete: notifications arrive, but the data set is what was trained on.
    world.upload(["daisy/tmp.jpg"])
    world.aws.s3.delete_object(Bucket=world.aws.dataset_bucket, Key=world.aws.prefix + "daisy/tmp.jpg")
    world.deliver([s3_body(s3_record(world.aws.dataset_bucket, world.aws.prefix + "daisy/tmp.jpg", world.now, "removed"))])
    world.now += 601
    assert world.tick()["action"] == "skipped"
    assert len(world.training_jobs()) == 1 and world.status()["pending_uploads"] == 0


def test_other_jobs_and_unknown_events_are_ignored(world):
    assert world.sagemaker_event(training_state_event("someone-elses-job", "Completed"))["action"] == "ignored"
    assert world.sagemaker_event(training_state_event("flowers-0123456789abcdef", "Completed"))["action"] == "ignored"
    assert world.sagemaker_event(processing_state_event("flowers-0123456789abcdef-convert", "Completed"))["action"] == "ignored"


def test_conversion_failure_and_unusable_output(world):
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    run = world.tick()
    world.sagemaker_event(training_state_event(run["job"], "Completed"))
    failed = world.sagemaker_event(processing_state_event(run["job"] + "-convert", "Failed", reason="ConversionError: no test photos"))
    assert failed["action"] == "failed" and "no test photos" in failed["reason"]
    assert world.packages() == []

    world.upload(["daisy/b.jpg"])
    world.now += 601
    run = world.tick()
    world.sagemaker_event(training_state_event(run["job"], "Completed"))
    result = world.sagemaker_event(processing_state_event(run["job"] + "-convert", "Completed"))  # but no files written
    assert result["action"] == "failed" and "conversion output" in result["reason"]


def test_lost_events_are_healed_by_the_tick(world):
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    run = world.tick()
    world.now += 901  # no state-change event ever came; moto reports the job Completed
    assert world.tick()["action"] == "converting"
    assert world.processing_jobs() == [run["job"] + "-convert"]


def test_concurrent_claims_for_one_version():
    from chalicelib.ports import BUSY, CLAIMED
    from chalicelib.pipeline.records import Running

    svc = services.get()
    running = Running("0123456789abcdef", "flowers-0123456789abcdef", "launching", T0, T0)
    assert svc.state.claim_run(svc.settings.dataset_id, running, 0) == CLAIMED
    assert svc.state.claim_run(svc.settings.dataset_id, running, 0) == BUSY


test_concurrent_claims_for_one_version = pytest.mark.usefixtures("aws")(test_concurrent_claims_for_one_version)


def test_registry_client_token_is_one_per_group_and_version_for_long_group_names(aws):  # noqa: F811
    """ClientToken was `f"{group}-{version}"[:36]`: with a group of 20+ characters the version was cut off,
    so two versions shared a token. Now a hash of both, within SageMaker's 36 characters."""
    import re

    from chalicelib.adapters.aws.sagemaker_registry import SageMakerModelRegistry, client_token
    from chalicelib.pipeline.records import ModelEntry

    group = "flowers-production-eu-west-1-mobile-team"  # 40 characters
    sent = []
    aws.sagemaker.meta.events.register("provide-client-params.sagemaker.CreateModelPackage",
                                       lambda params, **_: sent.append(params["ClientToken"]))
    registry = SageMakerModelRegistry(aws.sagemaker, group)
    versions = ("0123456789abcdef", "0123456789abcde0")
    for version in versions:
        entry = ModelEntry(version, "pending", 0, model_uri=f"s3://a/models/{version}/model.tflite", dataset_version=version)
        assert registry.register(entry, {}).version == version
    assert registry.register(ModelEntry(versions[0], "pending", 0), {}).version == versions[0]  # found: nothing sent
    assert len(sent) == 2 and sent[0] != sent[1]
    assert all(len(token) <= 36 and re.fullmatch(r"[a-zA-Z0-9-]+", token) for token in sent)
    # A replayed registration (the find missed it, e.g. two invocations at once) sends the same token again.
    assert [client_token(group, v) for v in versions] == sent
    assert client_token(group, versions[0]) == client_token(group, versions[0]) != client_token(group[:-1], versions[0])


def test_the_run_trains_on_its_manifest(world, monkeypatch):
    """Lineage: the tick lists the data set once and writes exactly that list (keys, ETags, sizes, version
    ids) to s3://ARTIFACTS/manifests/<version>.json, once; training and conversion read SageMaker's
    ManifestFile of the same keys, so an upload made after the launch is not trained on; metadata.json
    and the registry entry name the manifest's URI and sha256; GET /models/{version}/photos lists it."""
    from botocore.client import BaseClient

    s3 = world.aws.s3
    for bucket in (world.aws.dataset_bucket, world.aws.artifacts):  # as the stack makes them
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    requests = {}
    real_call = BaseClient._make_api_call

    def recording(client, operation, params):
        requests.setdefault(operation, []).append(params)
        return real_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    keys = ["daisy/a.jpg", "daisy/b.jpg", "roses/c.jpg"]
    world.upload(keys)
    world.upload(["daisy/a.jpg"], content=b"again")  # a second version of a.jpg: the manifest names the latest
    world.now += 601
    run = world.tick()
    version, job = run["version"], run["job"]
    world.upload(["roses/late.jpg"])  # after the launch: not in this run

    record_uri = f"s3://flowers-artifacts/manifests/{version}.json"
    raw = s3.get_object(Bucket=world.aws.artifacts, Key=f"manifests/{version}.json")["Body"].read()
    record = json.loads(raw)
    listed = {v["Key"][len(world.aws.prefix):]: v for v in
              s3.list_object_versions(Bucket=world.aws.dataset_bucket, Prefix=world.aws.prefix)["Versions"] if v["IsLatest"]}
    assert [f["key"] for f in record["files"]] == keys and record["count"] == 3
    assert record["dataset_uri"] == "s3://flowers-data/datasets/flowers/" and record["version"] == version
    for entry in record["files"]:
        latest = listed[entry["key"]]
        assert (entry["etag"], entry["size"], entry["version_id"]) == (latest["ETag"].strip('"'), latest["Size"], latest["VersionId"])
    assert record["files"][0]["etag"] == hashlib.md5(b"againdaisy/a.jpg").hexdigest()
    channel = json.loads(s3.get_object(Bucket=world.aws.artifacts, Key=f"manifests/{version}.manifest")["Body"].read())
    assert channel == [{"prefix": "s3://flowers-data/datasets/flowers/"}, *keys]

    (created,) = requests["CreateTrainingJob"]
    source = created["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert (source["S3DataType"], source["S3Uri"]) == ("ManifestFile", f"s3://flowers-artifacts/manifests/{version}.manifest")
    sha = hashlib.sha256(raw).hexdigest()
    environment = {k: v for k, v in created["Environment"].items() if k.startswith("FLOWERS_MANIFEST")}  # the rest: issue 21's tests
    assert environment == {"FLOWERS_MANIFEST_URI": record_uri, "FLOWERS_MANIFEST_SHA256": sha}

    # Replayed ticks, the conversion, a skipped version: the manifest is never written again.
    world.tick()
    world.sagemaker_event(training_state_event(job, "Completed"))
    (conversion,) = requests["CreateProcessingJob"]
    data = next(i["S3Input"] for i in conversion["ProcessingInputs"] if i["InputName"] == "data")
    assert (data["S3DataType"], data["S3Uri"]) == ("ManifestFile", f"s3://flowers-artifacts/manifests/{version}.manifest")
    assert data["LocalPath"] == "/opt/ml/processing/data"
    world.write_conversion_output(version, 0.91, manifest={"uri": record_uri, "sha256": sha})
    done = world.sagemaker_event(processing_state_event(job + "-convert", "Completed"))
    assert done["action"] == "registered"
    written = [v["Key"] for v in s3.list_object_versions(Bucket=world.aws.artifacts, Prefix="manifests/")["Versions"]]
    assert sorted(written) == [f"manifests/{version}.json", f"manifests/{version}.manifest"]

    # The registry records it (CustomerMetadataProperties), and reads it back.
    (package,) = world.packages()
    props = world.aws.sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])["CustomerMetadataProperties"]
    assert (props["manifest_uri"], props["manifest_sha256"]) == (record_uri, sha)
    entry = services.get().registry.find(version)
    assert (entry.manifest_uri, entry.manifest_sha256) == (record_uri, sha)
    current = world.client.http.get("/models/current").json_body
    assert current["manifest"] == {"uri": record_uri, "sha256": sha}

    # GET /models/{version}/photos: the manifest, a page at a time; the late upload is not in it.
    photos = world.client.http.get(f"/models/{version}/photos").json_body
    assert [f["key"] for f in photos["files"]] == keys and photos["count"] == 3 and photos["next_offset"] is None
    assert photos["manifest"] == {"uri": record_uri, "sha256": sha, "recorded_sha256": sha, "matches": True}
    page = world.client.http.get(f"/models/{version}/photos?offset=1&limit=1").json_body
    assert [f["key"] for f in page["files"]] == ["daisy/b.jpg"] and page["next_offset"] == 2
    assert world.client.http.get("/models/0123456789abcdef/photos").status_code == 404
    assert world.client.http.get("/models/nope/photos").json_body["error"]["code"] == "bad_version"
    assert world.client.http.get(f"/models/{version}/photos?limit=0").json_body["error"]["code"] == "bad_limit"

    # The next run (the late upload) has a manifest of its own, with it.
    world.now += 601
    second = world.tick()
    assert second["action"] == "started" and second["version"] != version
    in_second = world.client.http.get(f"/models/{second['version']}/photos").json_body  # a run without a model yet
    assert [f["key"] for f in in_second["files"]] == keys + ["roses/late.jpg"] and in_second["manifest"]["matches"] is None

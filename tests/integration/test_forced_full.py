"""A one-shot full run (issue 21): `flowers retrain --full` / POST /runs {"full": true} starts that run from ImageNet
even where it would warm-start from production, through every job spec built for it (the first, a relaunch, a
retry); the run after it decides afresh. Also: Running.full in both state stores, the 400 for a `full` that is no
JSON boolean, and `warm_start=none` (training.json, `flowers up -H`) leaving the job without a production channel."""
from __future__ import annotations

import json

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib import services, settings
from chalicelib.adapters.local.wiring import LocalAdapters
from chalicelib.contract.vocabulary import Action, ActorKind, Via
from chalicelib.pipeline.actors import Actor
from chalicelib.pipeline.orchestrator import Orchestrator
from chalicelib.ports import CLAIMED
from chalicelib.pipeline.records import ModelEntry, Running
from chalicelib.contract.warm_start import FORCED_FULL, START_FROM_ENV
from pipeline_fixtures import aws, created, processing_state_event, training_state_event  # noqa: F401  (fixtures)
from test_cli_cloud import KEY as CLOUD_KEY, gateway, run as cloud_cli  # noqa: F401  (fixture)
from test_pipeline_aws import World

JSON = {"Content-Type": "application/json"}
CAPACITY = "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."
OPERATOR = Actor("tester", ActorKind.LOCAL, Via.CLI)
FORCED = {"kind": "imagenet", "reason": FORCED_FULL, "chain": 0, "production_version": ""}


def test_the_sqlite_store_keeps_full_through_claim_and_advance(tmp_path):
    local = LocalAdapters(settings.from_environ({"FLOWERS_MODE": "local", "FLOWERS_HOME": str(tmp_path / "home")}))
    assert local.state.claim_run("ds", Running("v1", "job-v1", "launching", 1.0, 1.0, full=True), 0) == CLAIMED
    assert local.state.advance("ds", "job-v1", ("launching",), stage="waiting", job_name="job-v1-a2", attempt=2)
    running = local.state.dataset_state("ds").running
    assert running is not None and running.full is True and running.job_name == "job-v1-a2"


def test_the_dynamodb_store_keeps_full_through_claim_and_advance(aws):  # noqa: F811
    store = services.get().orchestrator.state
    assert type(store).__name__ == "DynamoStateStore"
    assert store.claim_run("ds", Running("v1", "job-v1", "launching", 1.0, 1.0, full=True), 0) == CLAIMED
    assert store.advance("ds", "job-v1", ("launching",), stage="waiting", job_name="job-v1-a2", attempt=2)
    running = store.dataset_state("ds").running
    assert running is not None and running.full is True and running.job_name == "job-v1-a2"
    assert store.claim_run("other", Running("v2", "job-v2", "launching", 1.0, 1.0), 0) == CLAIMED
    assert store.dataset_state("other").running.full is False


# the cloud, on moto ----------------------------------------------------------------------------
def _channels(request: dict) -> dict[str, str]:
    return {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}


def _register(world: World, run: dict, accuracy: float, start_from: dict, baseline: dict | None = None) -> None:
    """The run's jobs complete; its metadata.json says what training recorded (training/incremental.py's record, from
    the FLOWERS_START_FROM the job was given); SageMaker's model.tar.gz is where the next warm start reads it."""
    world.sagemaker_event(training_state_event(run["job"], "Completed"))
    world.write_conversion_output(run["version"], accuracy, baseline=baseline)
    key = f"models/{run['version']}/metadata.json"
    document = json.loads(world.aws.s3.get_object(Bucket=world.aws.artifacts, Key=key)["Body"].read())
    document.update(source_job=run["job"], training={"start_from": start_from})
    world.aws.s3.put_object(Bucket=world.aws.artifacts, Key=key, Body=json.dumps(document).encode())
    world.aws.s3.put_object(Bucket=world.aws.artifacts, Key=f"training/{run['job']}/output/model.tar.gz", Body=b"tar.gz bytes")
    done = world.sagemaker_event(processing_state_event(run["job"] + "-convert", "Completed"))
    assert done["model_status"] == "approved", done


def _with_production(world: World) -> dict:
    """A first run (from ImageNet: no production yet), approved: the next run of the same classes would warm-start."""
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    first = world.tick()
    assert first["action"] == "started"
    _register(world, first, 0.91, {"kind": "imagenet", "warm": False, "chain": 0, "reason": "no production model yet"})
    return first


def _recorded_start(environment: dict[str, str]) -> dict:
    """metadata.json's training.start_from as training writes it for a run given this environment (no warm start made)."""
    from training import incremental
    from training.hyperparameters import Hyperparameters

    return incremental.record("", Hyperparameters(preset="mobilenet_v2"), environment)


def test_a_forced_full_run_and_its_retry_start_from_imagenet_and_the_next_run_warm_starts_again(aws, created):  # noqa: F811
    with Client(chalice_app.app) as client:
        world = World(aws, client)
        first = _with_production(world)
        world.upload(["daisy/c.jpg"])  # same classes: a tick would warm-start from production
        answer = world.client.http.post("/runs", headers=JSON, body=json.dumps({"full": True, "reason": "drifted"}).encode())
        assert answer.status_code == 200, answer.body
        forced = answer.json_body
        assert (forced["action"], forced["reason"]) == ("started", "drifted")
        assert forced["start_from"] == {"kind": "imagenet", "reason": FORCED_FULL}
        request = created[forced["job"]]
        assert list(_channels(request)) == ["training"]  # no production channel
        assert json.loads(request["Environment"][START_FROM_ENV]) == FORCED
        assert services.get().orchestrator.dataset_state().running.full is True  # DynamoDB kept it

        # A transient failure: the retry's job (a new name, a new spec) is a full run too.
        assert world.sagemaker_event(training_state_event(forced["job"], "Failed", reason=CAPACITY))["action"] == "retrying"
        world.now += 301
        retry = world.tick()
        assert retry == {"action": "started", "job": forced["job"] + "-a2", "version": forced["version"]}
        assert list(_channels(created[retry["job"]])) == ["training"]
        assert json.loads(created[retry["job"]]["Environment"][START_FROM_ENV]) == FORCED
        recorded = _recorded_start(created[retry["job"]]["Environment"])
        assert (recorded["kind"], recorded["warm"], recorded["chain"], recorded["reason"]) == ("imagenet", False, 0, FORCED_FULL)
        _register(world, retry, 0.93, recorded, baseline={"accuracy": 0.91, "count": 150})

        # The next run (new data) decides afresh: a warm start from the forced run's model.
        world.upload(["roses/d.jpg"])
        world.now += 601
        after = world.tick()
        assert after["action"] == "started" and services.get().orchestrator.dataset_state().running.full is False
        channels = _channels(created[after["job"]])
        assert channels["production"] == f"s3://flowers-artifacts/training/{retry['job']}/output/model.tar.gz"
        start = json.loads(created[after["job"]]["Environment"][START_FROM_ENV])
        assert (start["kind"], start["chain"], start["production_version"]) == ("production", 1, forced["version"])
        assert first["version"] != forced["version"] != after["version"]


def test_a_forced_full_run_relaunched_after_a_crash_mid_launch_is_still_full(aws, created):  # noqa: F811
    with Client(chalice_app.app) as client:
        world = World(aws, client)
        _with_production(world)
        world.upload(["daisy/c.jpg"])
        jobs = services.get().orchestrator.jobs
        tried = []

        def crash(spec):  # the Lambda dies between the claim and CreateTrainingJob
            tried.append(spec)
            raise RuntimeError("Task timed out")

        jobs.start_training = crash  # on this instance only; `del` brings the adapter's own back
        try:
            answer = world.client.http.post("/runs", headers=JSON, body=b'{"full": true}')
        finally:
            del jobs.start_training
        assert answer.status_code == 500 and json.loads(tried[0].start_from) == FORCED and tried[0].warm_start_uri == ""
        running = services.get().orchestrator.dataset_state().running
        assert (running.stage, running.full) == ("launching", True)
        world.now += 121  # RELAUNCH_AFTER
        relaunched = world.tick()
        assert relaunched == {"action": "started", "job": running.job_name, "version": running.version}
        assert list(_channels(created[running.job_name])) == ["training"]
        assert json.loads(created[running.job_name]["Environment"][START_FROM_ENV]) == FORCED


@pytest.mark.parametrize("body", [b'{"full": "yes"}', b'{"full": "false"}', b'{"full": 1}', b'{"full": null}', b'{"full": [true]}'])
def test_full_must_be_a_json_boolean(aws, body):  # noqa: F811
    with Client(chalice_app.app) as client:
        world = World(aws, client)
        world.upload(["daisy/a.jpg", "roses/b.jpg"])
        answer = world.client.http.post("/runs", headers=JSON, body=body)
        assert answer.status_code == 400 and answer.headers["Content-Type"] == "application/json"
        assert answer.json_body["error"]["code"] == "bad_full"
        assert "full must be true or false (a JSON boolean)" in answer.json_body["error"]["message"]
        assert world.training_jobs() == [] and world.status()["running_job"] is None  # refused before anything started
        plain = world.client.http.post("/runs", headers=JSON, body=b'{"full": false}')
        assert plain.status_code == 200 and plain.json_body["start_from"]["kind"] == "imagenet"  # no production yet
        assert plain.json_body["start_from"]["reason"] == "no production model yet"


# local mode ----------------------------------------------------------------------------------
def _local_production(home, environ: dict[str, str] | None = None) -> LocalAdapters:
    """A local home whose production model has the data set's classes and trained weights on disk: a run would
    warm-start from it. Jobs are recorded, not run (the runner is not started)."""
    local = LocalAdapters(settings.from_environ({"FLOWERS_MODE": "local", "FLOWERS_HOME": str(home), **(environ or {})}))
    for key in ("daisy/a.jpg", "roses/b.jpg"):
        (local.bucket_folder / key).parent.mkdir(parents=True, exist_ok=True)
        (local.bucket_folder / key).write_bytes(key.encode())
    local.jobs._create("prod-job", "training", {})
    with local.db.transaction() as tx:
        tx.execute("UPDATE jobs SET status = 'Completed', attempt = 1 WHERE name = 'prod-job'")
    weights = local.artifact_folder / "training" / "prod-job" / "attempt-1" / "output" / "model"
    weights.mkdir(parents=True)
    (weights / "model.keras").write_bytes(b"keras")
    version = "00000000000000a1"
    prefix = f"s3://{local.settings.artifact_bucket}/models/{version}/"
    metadata = {"labels": ["daisy", "roses"], "source_job": "prod-job", "training": {"start_from": {"kind": "imagenet", "chain": 0}}}
    local.objects.write(prefix + "metadata.json", json.dumps(metadata).encode())
    local.registry.register(ModelEntry(version, "pending", 0, model_uri=prefix + "model.tflite", metadata_uri=prefix + "metadata.json"),
                            metadata)
    local.registry.set_status(version, "approved", "seeded by the test")
    return local


def _local_orchestrator(local: LocalAdapters, now: float) -> Orchestrator:
    """The Orchestrator as `flowers up` runs it (services.py), at a fixed time."""
    return Orchestrator(local.settings, local.state, local.objects, local.jobs, local.registry, clock=lambda: now, policy=local.policy)


def _local_job_environment(local: LocalAdapters, job: str) -> dict[str, str]:
    spec = dict(local.jobs._spec(local.db.one("SELECT * FROM jobs WHERE name = ?", (job,))))
    job_dir = local.jobs._job_dir("training", job)
    return local.jobs._training_command(job, spec, job_dir, job_dir / "attempt-1")[1]


@pytest.mark.parametrize("how", ["warm", "flowers up -H warm_start=none", "training.json", "retrain --full"])
def test_local_jobs_get_no_production_channel_on_a_full_run(tmp_path, how):

    environ = {"FLOWERS_HYPERPARAMETERS": '{"warm_start": "none"}'} if how.startswith("flowers up") else {}
    local = _local_production(tmp_path / "home", environ)
    if how == "training.json":
        (local.bucket_folder / "training.json").write_text('{"warm_start": "none"}')
    orchestrator = _local_orchestrator(local, 1000.0)
    started = orchestrator.retrain("drifted", OPERATOR, full=True) if how == "retrain --full" else orchestrator._launch(0, 1000.0)
    assert started.action is Action.STARTED, started
    env = _local_job_environment(local, started.job)
    start = json.loads(env[START_FROM_ENV])
    if how == "warm":  # the control: the same home warm-starts from production's weights
        assert env["SM_CHANNEL_PRODUCTION"].endswith("/training/prod-job/attempt-1/output/model") and start["kind"] == "production"
        return
    assert env["SM_CHANNEL_PRODUCTION"] == "" and start["kind"] == "imagenet"
    assert start["reason"] == (FORCED_FULL if how == "retrain --full" else "a full run forced by the warm_start hyperparameter (none)")


def test_cli_retrain_full_starts_a_full_run_and_says_so(tmp_path):
    """`flowers retrain --full` on a home with no `flowers up` (answered in this process): the run is recorded with
    its job, from ImageNet, and the CLI says where it starts from."""
    from local_fixtures import flowers

    home = tmp_path / "home"
    _local_production(home).db.close()
    done = flowers(home, "retrain", "--full", "--reason", "drifted", "--home", str(home))
    assert done.returncode == 0, done.stderr
    assert "started (job " in done.stdout and f"starts from ImageNet (a full run): {FORCED_FULL}" in done.stdout
    local = LocalAdapters(settings.from_environ({"FLOWERS_MODE": "local", "FLOWERS_HOME": str(home)}))
    running = local.state.dataset_state(local.settings.dataset_id).running
    assert running is not None and running.full is True
    env = _local_job_environment(local, running.job_name)
    assert env["SM_CHANNEL_PRODUCTION"] == "" and json.loads(env[START_FROM_ENV]) == FORCED


def test_cli_retrain_full_against_the_cloud_api_is_signed_and_sends_full(gateway, capsys, tmp_path):  # noqa: F811
    """The cloud's path (--url and --api-key: Api.cloud, the operator call SigV4-signed) through the stand-in gateway,
    whose app (a local home here) has a production model the run would otherwise warm-start from."""
    _local_production(tmp_path / "home").db.close()
    code, out, err = cloud_cli(capsys, "retrain", "--full", "--url", gateway.url, "--api-key", CLOUD_KEY)
    assert code == 0, err
    assert f"starts from ImageNet (a full run): {FORCED_FULL}" in out
    assert [(method, path) for method, path, _ in gateway.seen] == [("POST", "/api/runs")]
    assert "authorization" in gateway.seen[0][2]  # signed
    running = services.get().orchestrator.dataset_state().running
    assert running is not None and running.full is True


def _local_job_hyperparameters(local: LocalAdapters, job: str) -> tuple[dict[str, str], dict[str, str]]:
    """(the spec's hyperparameters, the hyperparameters.json the job runner wrote for the job)."""
    spec = dict(local.jobs._spec(local.db.one("SELECT * FROM jobs WHERE name = ?", (job,))))
    job_dir = local.jobs._job_dir("training", job)
    local.jobs._training_command(job, spec, job_dir, job_dir / "attempt-1")
    return spec["hyperparameters"], json.loads((job_dir / "input" / "config" / "hyperparameters.json").read_text())


def test_flowers_up_h_is_a_layer_of_the_spec_and_the_local_job_runs_exactly_the_spec(tmp_path):
    """`flowers up -H` values are the last layer of the spec's hyperparameters (over the settings', the deployment's and
    training.json's), and the local job's hyperparameters.json is the spec's, nothing laid over it afterwards."""

    local = _local_production(tmp_path / "home", {"FLOWERS_HYPERPARAMETERS": '{"epochs": 1, "batch_size": "8"}',
                                                  "HYPERPARAMETERS": '{"epochs": 3, "dropout": 0.1}'})
    (local.bucket_folder / "training.json").write_text('{"epochs": 5, "dropout": 0.3}')
    orchestrator = _local_orchestrator(local, 1000.0)
    started = orchestrator._launch(0, 1000.0)
    assert started.action is Action.STARTED, started
    spec, job_file = _local_job_hyperparameters(local, started.job)
    assert spec == {"preset": local.settings.preset, "max_training_time": str(local.settings.max_training_time),
                    "epochs": "1", "dropout": "0.3", "batch_size": "8"}
    assert job_file == spec


def test_a_run_forced_full_stops_a_warm_start_folder_that_flowers_up_h_names(tmp_path):
    """retrain --full with `-H warm_start=<folder>`: the spec says warm_start none (warm_start.training_hyperparameters),
    and so does the job, where the job runner once laid the -H value back over the spec's and training loaded the folder."""

    local = _local_production(tmp_path / "home", {"FLOWERS_HYPERPARAMETERS": '{"warm_start": "/opt/ml/weights"}'})
    orchestrator = _local_orchestrator(local, 1000.0)
    started = orchestrator.retrain("drifted", OPERATOR, full=True)
    assert started.action is Action.STARTED and started.start_from.kind == "imagenet", started
    spec, job_file = _local_job_hyperparameters(local, started.job)
    assert spec["warm_start"] == "none" and job_file == spec
    assert _local_job_environment(local, started.job)["SM_CHANNEL_PRODUCTION"] == ""


def test_flowers_up_h_is_checked_with_the_settings():
    with pytest.raises(settings.SettingsError, match="FLOWERS_HYPERPARAMETERS.*epochs"):
        settings.from_environ({"FLOWERS_MODE": "local", "FLOWERS_HYPERPARAMETERS": '{"epochs": "many"}'})

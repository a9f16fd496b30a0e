"""Retrain on demand and who did what (issue 27, items 10 and 7): POST /runs / `flowers retrain` start a new run of
the current data set version even after it made a model (rejected, or to try again with the same photos), with a run
record, job names and a model version of its own, the earlier run's record kept; every operator action (a run by
hand, approve, reject, rollback) records its caller in the run record, the registry entry's reason and the domain
event. The cloud on moto, signed as API Gateway's IAM authorizer hands requests to the Lambda; local mode on a real
home (SQLite, folders, HOME/events.jsonl) through the `flowers` command."""
from __future__ import annotations

import getpass
import json
import sqlite3

import pytest

import app as chalice_app
from chalicelib import services, settings
from chalicelib.adapters.local.wiring import LocalAdapters
from chalicelib.contract.vocabulary import Action
from chalicelib.pipeline.orchestrator import Orchestrator
from chalicelib.pipeline.records import JobStatus, Running, model_version
from chalicelib.ports import CLAIMED, VERSION_EXISTS
from pipeline_fixtures import ACCOUNT, aws, principal, processing_state_event, signed_request, training_state_event  # noqa: F401
from test_domain_events_published import world  # noqa: F401  (fixture: the pipeline with the stack's bus)

ALICE, BOB, CAROL = principal("alice"), principal("bob"), principal("carol")
CLI = "flowers-cli"


def _by(arn: str, via: str = "cli") -> dict:
    return {"principal": arn, "kind": "iam", "via": via, "account": ACCOUNT}


def _post(path: str, body: dict, arn: str, agent: str = CLI) -> tuple[int, dict]:
    return signed_request(chalice_app.app, "POST", path, json.dumps(body).encode(), arn, agent)


def _package(world, version: str) -> dict:
    arn = next(p["ModelPackageArn"] for p in world.packages() if p.get("ModelPackageDescription") == f"flowers model {version}")
    return world.aws.sagemaker.describe_model_package(ModelPackageName=arn)


def _run_items(world) -> dict[str, dict]:
    table = world.aws.dynamodb.scan(TableName=world.aws.env["STATE_TABLE"])["Items"]
    return {item["sk"]["S"]: item for item in table if item["sk"]["S"].startswith("run#")}


def test_cloud_a_rejected_model_is_retrained_on_demand_with_its_own_record_and_every_caller_recorded(world):  # noqa: F811
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    first = world.tick()
    version, registered = world.finish_run(0.9)
    assert registered["model_status"] == "approved" and version == first["version"]
    world.seen()  # the first run's own events

    # alice rejects the served model, with the CLI: the registry's reason, the run record and the event say who.
    world.now += 10
    status, answer = _post(f"/models/{version}/reject", {"reason": "blurry photos of roses"}, ALICE)
    assert status == 200 and answer["by"] == _by(ALICE), answer
    assert _package(world, version)["ApprovalDescription"] == f"blurry photos of roses (by {ALICE} (iam, cli))"
    [rolled_back] = [e["detail"] for e in world.seen()]
    assert rolled_back["type"] == "Model Rolled Back" and rolled_back["by"] == _by(ALICE) and rolled_back["rejected"] == version

    # bob trains the same photos again (curl, no CLI): a new run, its own job names and model version.
    world.now += 10
    status, started = _post("/runs", {"reason": "try the same photos again"}, BOB, agent="curl/8.5")
    assert status == 200, started
    rerun_job = first["job"] + "-a2"
    assert (started["action"], started["job"], started["version"], started["reason"], started["by"]) == (
        "started", rerun_job, version, "try the same photos again", _by(BOB, "http"))
    new_model = started["model_version"]
    assert new_model == model_version(version, rerun_job) != version
    running = world.status()["running_job"]
    assert (running["requested_by"], running["request_reason"], running["model_version"]) == (
        _by(BOB, "http"), "try the same photos again", new_model)
    [run_started] = [e["detail"] for e in world.seen()]
    assert run_started["type"] == "Run Started" and run_started["by"] == _by(BOB, "http")
    assert run_started["reason"] == "try the same photos again" and run_started["model_version"] == new_model

    # A run in progress is still refused, naming it.
    status, busy = _post("/runs", {}, CAROL)
    assert status == 409 and f"run {rerun_job} is training" in busy["error"]["message"]

    # The rerun's jobs and model are its own: the conversion writes models/<its model version>/.
    world.sagemaker_event(training_state_event(rerun_job, "Completed"))
    assert sorted(world.processing_jobs()) == [first["job"] + "-a2-convert", first["job"] + "-convert"]
    conversion = world.aws.sagemaker.describe_processing_job(ProcessingJobName=rerun_job + "-convert")
    assert conversion["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].endswith(f"/models/{new_model}/")
    world.write_conversion_output(new_model, 0.93)
    done = world.sagemaker_event(processing_state_event(rerun_job + "-convert", "Completed"))
    assert done["action"] == "registered" and done["model_status"] == "approved", done
    registered_events = {e["detail"]["type"]: e["detail"] for e in world.seen()}
    assert registered_events["Model Registered"]["version"] == new_model
    assert registered_events["Model Registered"]["dataset_version"] == version
    assert registered_events["Model Promoted"]["by"] is None  # the gate, not a person

    # Both runs listed, the earlier one as it was; both packages in the registry.
    models = {m["version"]: m for m in world.client.http.get("/models/detail").json_body["models"]}
    assert models[version]["status"] == "rejected" and models[new_model]["status"] == "approved"
    assert models[new_model]["dataset_version"] == models[version]["dataset_version"] == version
    assert models[new_model]["requested_by"] == {"by": _by(BOB, "http"), "reason": "try the same photos again"}
    assert models[version]["requested_by"] is None
    assert models[version]["decided_by"] == "operator"  # her action is in the run record
    # What an API key reads (issue 28, item 4): named fields, a reason from the status and who decided, no principal.
    public = {m["version"]: m for m in world.client.http.get("/models").json_body["models"]}
    assert public[version]["reason"] == "rejected by an operator" and public[new_model]["reason"] == "approved by the promotion gate"
    assert "arn:" not in json.dumps(public) and "blurry" not in json.dumps(public)
    assert all("requested_by" not in m and "training_job" not in m for m in public.values())
    assert len(world.packages()) == 2 and world.client.http.get("/models/current").json_body["version"] == new_model
    items = _run_items(world)
    assert sorted(items) == [f"run#{version}", f"run#{version}#{rerun_job}"]
    assert items[f"run#{version}"]["status"]["S"] == "registered" and items[f"run#{version}"]["job_name"]["S"] == first["job"]

    # carol rolls back: the rerun's model is rejected, the first... was rejected too: approve it first (alice).
    world.now += 10
    assert _post(f"/models/{version}/approve", {"reason": "roses are fine after all"}, ALICE)[0] == 200
    world.now += 10
    status, rolled = _post("/models/rollback", {"reason": "new model misses daisies"}, CAROL)
    assert status == 200 and rolled == {"rejected": new_model, "current": version, "by": _by(CAROL)}, rolled
    assert _package(world, new_model)["ApprovalDescription"] == f"new model misses daisies (by {CAROL} (iam, cli))"
    [event] = [e["detail"] for e in world.seen()]
    assert event["type"] == "Model Rolled Back" and event["by"] == _by(CAROL) and event["rejected"] == new_model

    # Who did what, newest first: GET /status, from the run records.
    actions = world.status()["operator_actions"]
    assert [(a["command"], a["by"]["principal"], a["model_version"], a["dataset_version"]) for a in actions] == [
        ("rollback", CAROL, new_model, version), ("approve", ALICE, version, version), ("run", BOB, new_model, version),
        ("reject", ALICE, version, version)]
    assert actions[0]["reason"] == "new model misses daisies" and actions[0]["training_job"] == rerun_job
    assert len(_run_items(world)[f"run#{version}"]["actions"]["L"]) == 2  # reject, approve: on the first run's record


def test_cloud_the_tick_does_not_rerun_a_version_on_its_own_and_an_old_record_reads_back(world):  # noqa: F811
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    first = world.tick()
    version, _ = world.finish_run(0.9)
    svc = services.get()
    # A record written before run ids and actions existed reads as its version's first run, with no actions.
    item = _run_items(world)[f"run#{version}"]
    assert "run_id" in item and "actions" in item
    stripped = {k: v for k, v in item.items() if k not in ("run_id", "actions")}
    world.aws.dynamodb.put_item(TableName=world.aws.env["STATE_TABLE"], Item=stripped)
    record = svc.state.run(svc.settings.dataset_id, version)
    assert (record.run_id, record.actions, record.job_name, record.model_version) == ("", (), first["job"], version)
    # The first run's key is the guard: the tick's claim of the same version is refused, a rerun's is its own key.
    again = Running(version, first["job"], "launching", world.now, world.now)
    assert svc.state.claim_run(svc.settings.dataset_id, again, 0) == VERSION_EXISTS
    rerun = Running(version, first["job"] + "-a2", "launching", world.now, world.now, run_id=first["job"] + "-a2")
    assert svc.state.claim_run(svc.settings.dataset_id, rerun, 0) == CLAIMED
    assert svc.state.claim_run(svc.settings.dataset_id, rerun, 0) != CLAIMED


# local mode -------------------------------------------------------------------------------------
def _local(home) -> LocalAdapters:
    return LocalAdapters(settings.from_environ({"FLOWERS_MODE": "local", "FLOWERS_HOME": str(home), "MIN_TEST_IMAGES": "0"}))


def _finish_local(local: LocalAdapters, now: float, accuracy: float = 0.9) -> str:
    """The running run's jobs complete as the local job runner reports them; the conversion's output is written where
    the run's spec says (models/<its model version>/). Returns that model version."""
    orchestrator = Orchestrator(local.settings, local.state, local.objects, local.jobs, local.registry, clock=lambda: now,
                                events=local.events, policy=local.policy)
    running = orchestrator.dataset_state().running
    assert running is not None
    orchestrator.on_training_state(JobStatus(running.job_name, "Completed"))
    running = orchestrator.dataset_state().running
    folder = local.artifact_folder / "models" / running.model_version
    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(b"tflite " + running.job_name.encode())
    (folder / "labels.txt").write_text("daisy\nroses\n")
    metrics = {"test": {"accuracy": accuracy, "count": 60, "evaluated_on": "test"}, "val_accuracy": accuracy}
    (folder / "metadata.json").write_text(json.dumps({"labels": ["daisy", "roses"], "metrics": metrics,
                                                      "model": {"sha256": "ab" * 32, "size_bytes": 20}}))
    done = orchestrator.on_conversion_state(JobStatus(running.conversion_job, "Completed"))
    assert done.action is Action.REGISTERED, done
    return running.model_version


@pytest.fixture
def home(tmp_path):
    """A local home whose data set made a model, approved and served, with no `flowers up` running."""
    home = tmp_path / "home"
    local = _local(home)
    for key in ("daisy/a.jpg", "roses/b.jpg"):
        (local.bucket_folder / key).parent.mkdir(parents=True, exist_ok=True)
        (local.bucket_folder / key).write_bytes(key.encode())
    orchestrator = Orchestrator(local.settings, local.state, local.objects, local.jobs, local.registry, clock=lambda: 1000.0,
                                events=local.events, policy=local.policy)
    assert orchestrator._launch(0, 1000.0).action is Action.STARTED
    _finish_local(local, 1100.0)
    local.db.close()
    return home


def test_local_flowers_reject_then_retrain_starts_a_new_run_and_records_the_local_user(home):
    from local_fixtures import flowers

    user = getpass.getuser()
    local = _local(home)
    version = local.registry.production().version
    local.db.close()
    rejected = flowers(home, "reject", version, "--reason", "blurry")
    assert rejected.returncode == 0, rejected.stderr
    assert f"is now rejected (blurry (by {user} (local, cli)))" in rejected.stdout
    done = flowers(home, "retrain", "--reason", "same photos, another try")
    assert done.returncode == 0, done.stderr
    local = _local(home)
    dataset = local.settings.dataset_id
    new_model = local.state.dataset_state(dataset).running.model_version
    assert f"started (job flowers-{version}-a2)" in done.stdout and f"its model will be version {new_model}" in done.stdout
    assert new_model != version

    # Two run records of one version: the first as it was (with alice's... the local user's reject), the rerun's own.
    first, rerun = sorted(local.state.runs(dataset), key=lambda r: r.created_at)
    assert (first.version, first.run_id, first.status, first.model.get("sha256")) == (version, "", "registered", "ab" * 32)
    assert [(a.command, a.by.principal, a.by.kind, a.by.via, a.reason) for a in first.actions] == [
        ("reject", user, "local", "cli", "blurry")]
    assert (rerun.version, rerun.run_id, rerun.model_version) == (version, f"flowers-{version}-a2", new_model)
    assert [(a.command, a.by.principal, a.reason) for a in rerun.actions] == [("run", user, "same photos, another try")]
    assert local.registry.find(version).reason == f"blurry (by {user} (local, cli))"
    events = [json.loads(line) for line in (home / "events.jsonl").read_text().splitlines()]
    assert [(e["type"], (e.get("by") or {}).get("principal")) for e in events[-2:]] == [
        ("Model Rolled Back", user), ("Run Started", user)]
    assert events[-1]["reason"] == "same photos, another try" and events[-1]["model_version"] == new_model

    # The rerun makes its model beside the first; both listed, the actions shown by `flowers status` and `flowers events`.
    assert _finish_local(local, 2000.0) == new_model
    local.db.close()
    listed = flowers(home, "models", "--json")
    models = {m["version"]: m for m in json.loads(listed.stdout)}
    assert models[version]["status"] == "rejected" and models[new_model]["status"] == "approved"
    status = flowers(home, "status")
    assert "operator actions (newest first)" in status.stdout
    assert f"run      data set {version} by {user} (local, cli): same photos, another try" in status.stdout
    assert f"reject   {version} by {user} (local, cli): blurry" in status.stdout
    shown = flowers(home, "events")
    assert f"by {user} (local, cli)" in shown.stdout.splitlines()[-4]  # Run Started, then the rerun's registration


def test_local_web_and_curl_requests_are_recorded_as_http(home):
    """The same route without the CLI's User-Agent (the web page, curl): via http."""
    from chalice.test import Client

    local = _local(home)
    version = local.registry.production().version
    local.db.close()
    import os

    os.environ["FLOWERS_MODE"], os.environ["FLOWERS_HOME"] = "local", str(home)
    try:
        services.reset()
        with Client(chalice_app.app) as client:
            answer = client.http.post(f"/models/{version}/reject", headers={"Content-Type": "application/json"}, body=b"{}")
        assert answer.status_code == 200 and answer.json_body["by"] == {"principal": getpass.getuser(), "kind": "local", "via": "http"}
    finally:
        del os.environ["FLOWERS_MODE"], os.environ["FLOWERS_HOME"]
        services.reset()


def test_a_home_from_before_reruns_keeps_its_runs_and_takes_a_rerun(tmp_path):
    """An old SQLite home (runs keyed by version alone, no actions): opened, its records read as each version's first
    run, and a rerun of the same version gets a record of its own."""
    local = _local(tmp_path / "home")  # its SQLite file is opened on first use
    path = local.home / (local.settings.state_table or "state.sqlite3")
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE runs (dataset TEXT NOT NULL, version TEXT NOT NULL, job_name TEXT NOT NULL, status TEXT NOT NULL, "
                    "created_at REAL NOT NULL, finished_at REAL NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '', "
                    "model TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (dataset, version))")
        old.execute("INSERT INTO runs VALUES ('ds', 'v1', 'job-v1', 'registered', 5.0, 6.0, 'ok', '{\"sha256\": \"abc\"}')")
    assert local.db.path == path
    [record] = local.state.runs("ds")
    assert (record.version, record.run_id, record.actions, record.model, record.reason) == ("v1", "", (), {"sha256": "abc"}, "ok")
    assert local.state.claim_run("ds", Running("v1", "job-v1", "launching", 7.0, 7.0), 0) == VERSION_EXISTS
    assert local.state.claim_run("ds", Running("v1", "job-v1-a2", "launching", 7.0, 7.0, run_id="job-v1-a2"), 0) == CLAIMED
    assert [r.job_name for r in local.state.runs("ds")] == ["job-v1-a2", "job-v1"]
    assert local.state.run("ds", "v1").job_name == "job-v1-a2"  # the version's newest


# the CLI against the cloud -------------------------------------------------------------------------
@pytest.fixture
def cloud_gateway(aws, monkeypatch):  # noqa: F811
    """The stand-in for API Gateway (test_cli_cloud.py: key and SigV4 checked, the signer's principal put in the
    request context) in front of the app in the cloud's mode, on moto."""
    from test_cli_cloud import ACCESS_KEY, SECRET, Gateway

    for name in ("FLOWERS_URL", "FLOWERS_API_KEY", "FLOWERS_STACK", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    services.reset()
    gateway = Gateway()
    yield gateway
    gateway.close()


def test_cloud_cli_retrain_after_reject_records_the_signing_principal(cloud_gateway, aws, capsys):  # noqa: F811
    from test_cli_cloud import KEY, OPERATOR_ARN, run
    from test_pipeline_aws import World

    world = World(aws, cloud_gateway.client)
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    first = world.tick()
    version, _ = world.finish_run(0.9)
    api = ("--url", cloud_gateway.url, "--api-key", KEY)
    code, out, err = run(capsys, "reject", version, "--reason", "wrong colours", *api)
    assert code == 0, err
    assert f"model {version} is now rejected (wrong colours (by {OPERATOR_ARN} (iam, cli)))" in out
    code, out, err = run(capsys, "retrain", "--reason", "same photos again", *api)
    assert code == 0, err
    running = services.get().orchestrator.dataset_state().running
    assert f"started (job {first['job']}-a2)" in out and f"its model will be version {running.model_version}" in out
    assert running.requested_by.principal == OPERATOR_ARN and running.requested_by.via == "cli"
    assert running.request_reason == "same photos again"
    code, out, err = run(capsys, "status", *api)
    assert code == 0, err
    assert f"run      data set {version} by {OPERATOR_ARN} (iam, cli): same photos again" in out
    assert f"reject   {version} by {OPERATOR_ARN} (iam, cli): wrong colours" in out
    code, _, err = run(capsys, "retrain", *api)
    assert code == 1 and f"run {first['job']}-a2 is training: wait for it to end" in err

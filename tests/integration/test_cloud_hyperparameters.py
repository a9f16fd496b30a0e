"""Hyperparameters for cloud runs (chalicelib/contract/hyperparameters.py): training.json beside the data set and the
deployment's defaults (HYPERPARAMETERS, from the CDK context) reach the SageMaker job (moto); a bad value fails
the run before any job is created, with the reason in GET /status. The rules themselves, one table for the Lambda
and the training job: tests/test_hyperparameter_table.py."""
from __future__ import annotations

import json

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.contract import hyperparameters as hp
from chalicelib import services, settings
from pipeline_fixtures import ENV, aws  # noqa: F401  (fixture)
from test_pipeline_aws import World


def test_max_training_time_is_bounded_by_what_sagemaker_allows():
    assert hp.check({"max_training_time": "3600"}, "x") == {"max_training_time": "3600"}
    for bad in (0, hp.MAX_RUNTIME + 1):
        with pytest.raises(hp.HyperparameterProblem, match="max_training_time"):
            hp.check({"max_training_time": bad}, "x")


def test_every_problem_is_named_with_its_source():
    with pytest.raises(hp.HyperparameterProblem) as caught:
        hp.parse_file(b'{"epochs": -1, "colour": "red", "dropout": 0.1}')
    message = str(caught.value)
    assert message.startswith("bad hyperparameters in training.json: ") and "epochs" in message and "'colour'" in message
    for raw in (b"[1, 2]", b"not json", b'"epochs"'):
        with pytest.raises(hp.HyperparameterProblem, match="training.json"):
            hp.parse_file(raw)


def test_deployment_defaults_are_a_checked_setting():
    env = {k: v for k, v in ENV.items() if not k.startswith("AWS_")}
    assert settings.from_environ(dict(env, HYPERPARAMETERS='{"epochs": 8}')).hyperparameters == {"epochs": "8"}
    with pytest.raises(settings.SettingsError, match="HYPERPARAMETERS"):
        settings.from_environ(dict(env, HYPERPARAMETERS='{"epochs": -8}'))


def test_the_cdk_context_value_becomes_the_lambdas_variable():
    import sys

    from pipeline_fixtures import ROOT

    sys.path.append(str(ROOT / "infra"))
    from flowers_infra.config import FlowersConfig

    context = {"hyperparameters": {"epochs": 8, "augmentation": False}}
    config = FlowersConfig.from_context(context.get)
    assert json.loads(config.lambda_environment()["HYPERPARAMETERS"]) == {"epochs": "8", "augmentation": "false"}
    assert FlowersConfig.from_context({"hyperparameters": '{"batch_size": "16"}'}.get).hyperparameters == '{"batch_size": "16"}'
    assert FlowersConfig().lambda_environment()["HYPERPARAMETERS"] == "{}"
    with pytest.raises(ValueError, match="bad CDK context value hyperparameters"):
        FlowersConfig.from_context({"hyperparameters": {"batch_size": 0}}.get)


# the pipeline on moto ---------------------------------------------------------------------------
@pytest.fixture
def world(aws, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HYPERPARAMETERS", json.dumps({"epochs": "4", "batch_size": "16"}))  # the deployment's defaults
    services.reset()
    with Client(chalice_app.app) as client:
        yield World(aws, client)


def _training_json(world, document) -> None:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    world.aws.s3.put_object(Bucket=world.aws.dataset_bucket, Key=world.aws.prefix + "training.json", Body=body)


def test_training_json_sets_the_next_runs_hyperparameters(world):
    _training_json(world, {"epochs": 10, "learning_rate": 0.0005, "max_training_time": 7200})
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    started = world.tick()
    assert started["action"] == "started"
    job = world.aws.sagemaker.describe_training_job(TrainingJobName=started["job"])
    assert job["HyperParameters"] == {"preset": "resnet_v1_50", "max_training_time": "7200", "epochs": "10",
                                      "batch_size": "16", "learning_rate": "0.0005"}
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 7200


def test_a_bad_training_json_fails_the_run_before_any_job_and_status_says_why(world):
    _training_json(world, {"epochs": -3, "dropout": 2})
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    result = world.tick()
    assert result["action"] == "failed" and world.training_jobs() == []
    outcome = world.status()["last_outcome"]
    assert outcome["status"] == "failed" and "bad hyperparameters in training.json" in outcome["reason"]
    assert "epochs" in outcome["reason"] and "dropout" in outcome["reason"] and world.status()["running_job"] is None
    # Fixed, then retrained by hand: the job starts with the new values.
    _training_json(world, {"epochs": 3})
    answer = world.client.http.post("/runs", headers={"Content-Type": "application/json"}, body=b"{}")
    assert answer.status_code == 200 and answer.json_body["action"] == "started"
    job = world.aws.sagemaker.describe_training_job(TrainingJobName=answer.json_body["job"])
    assert job["HyperParameters"]["epochs"] == "3"


def test_training_json_is_not_a_photo_and_starts_no_run(world):
    world.upload(["daisy/a.jpg"])
    world.now += 601
    world.tick()
    world.finish_run()
    _training_json(world, {"epochs": 3})
    world.now += 601
    assert world.tick()["action"] != "started" and len(world.training_jobs()) == 1

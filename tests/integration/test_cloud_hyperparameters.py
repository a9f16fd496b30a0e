"""Hyperparameters for cloud runs (chalicelib/contract/hyperparameters.py): training.json beside the data set and the
deployment's defaults (HYPERPARAMETERS, from the CDK context) reach the SageMaker job (moto); a bad value fails
the run before any job is created, with the reason in GET /status. The rules themselves, one table for the Lambda
and the training job: tests/unit/test_hyperparameter_table.py."""
from __future__ import annotations

import json

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib import services
from pipeline_fixtures import aws  # noqa: F401  (fixture)
from test_pipeline_aws import World


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
    assert job["HyperParameters"] == {"preset": "efficientnet_lite1", "max_training_time": "7200", "epochs": "10",
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


def test_a_rule_across_layers_fails_the_run_as_training_would(world, monkeypatch):
    """The preset from the settings, ImageNet weights from training.json: each passes alone, training would refuse
    the two together, so the run fails before any job is paid for."""
    monkeypatch.setenv("PRESET", "tiny_cnn")
    services.reset()
    _training_json(world, {"weights": "imagenet"})
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    result = world.tick()
    assert result["action"] == "failed" and world.training_jobs() == []
    reason = world.status()["last_outcome"]["reason"]
    assert "weights: preset tiny_cnn has no ImageNet weights" in reason and "training.json together" in reason


def test_post_runs_that_fails_at_once_answers_why(world):
    """POST /runs with a bad training.json: the answer is the failure's reason, not the operator's."""
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    _training_json(world, {"epochs": -3})
    answer = world.client.http.post("/runs", headers={"Content-Type": "application/json"}, body=b"{}")
    assert answer.status_code == 200 and answer.json_body["action"] == "failed"
    assert "bad hyperparameters in training.json: epochs" in answer.json_body["reason"] and world.training_jobs() == []

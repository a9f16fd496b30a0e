"""Per-class test figures (precision, recall, F1, support) and the most confused pairs wherever a model is shown:
metadata.json (training.evaluation), the registry entry, GET /models and `flowers models VERSION`."""
from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.api import openapi
from flowers_cli.output import format_model
from pipeline_fixtures import aws, processing_state_event, training_state_event  # noqa: F401  (fixture)
from test_pipeline_aws import World
from training import evaluation


@pytest.fixture
def world(aws):  # noqa: F811
    with Client(chalice_app.app) as client:
        yield World(aws, client)


def test_registry_models_route_and_cli_show_each_class(world):
    labels = ["daisy", "roses"]
    test = evaluation.classification_metrics(np.array([0, 0, 0, 1, 1]), np.array([0, 1, 0, 1, 1]), labels)
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    job = world.tick()["job"]
    world.sagemaker_event(training_state_event(job, "Completed"))
    version = world.status()["running_job"]["version"]
    world.write_conversion_output(version, test["accuracy"])
    key = f"models/{version}/metadata.json"
    metadata = json.loads(world.aws.s3.get_object(Bucket=world.aws.artifacts, Key=key)["Body"].read())
    metadata["metrics"]["test"] = dict(test, evaluated_on="test")
    world.aws.s3.put_object(Bucket=world.aws.artifacts, Key=key, Body=json.dumps(metadata).encode())
    world.sagemaker_event(processing_state_event(job + "-convert", "Completed"))

    package = world.packages()[0]
    props = world.aws.sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])["CustomerMetadataProperties"]
    assert props["per_class"] == "daisy p1.000 r0.667 f0.800 n3; roses p0.667 r1.000 f0.800 n2"

    body = world.client.http.get("/models").json_body
    document = openapi.document()
    jsonschema.validate(body, dict(document["components"]["schemas"]["Models"], components=document["components"]))
    model = body["models"][0]
    assert model["metrics"]["per_class"]["roses"] == {"precision": pytest.approx(2 / 3), "recall": 1.0,
                                                      "f1": pytest.approx(0.8), "support": 2}
    assert model["metrics"]["confused_pairs"] == [{"true": "daisy", "predicted": "roses", "count": 1}]

    text = format_model(model)
    assert text.splitlines()[0].startswith(version)
    assert "daisy 100.0 % 66.7 % 80.0 % 3".split() in [line.split() for line in text.splitlines()]
    assert "most confused daisy taken for roses (1)" in text

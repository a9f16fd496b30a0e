"""Approval that a relabel cannot game (chalicelib/pipeline/relabel.py), through the deployed functions on moto: a run
whose photos were moved to another class folder, or whose classes changed, is registered `pending` with the reason
(GET /status, GET /models, the Model Registered event) however well it scores; an honest growth of the data set is
still approved. The rules alone: tests/unit/test_relabel.py."""
from __future__ import annotations

import hashlib

from pipeline_fixtures import aws, processing_state_event, s3_body, s3_record, training_state_event  # noqa: F401  (aws: fixture)
from test_domain_events_published import world  # noqa: F401  (fixture: the pipeline, its bus read through a queue)

CLASSES = ("daisy", "roses", "tulips")


def put(world, keys_and_bodies):  # noqa: F811
    """Upload (or, with body None, delete) data set photos and deliver their notifications."""
    records = []
    for key, body in keys_and_bodies:
        full = world.aws.prefix + key
        if body is None:
            world.aws.s3.delete_object(Bucket=world.aws.dataset_bucket, Key=full)
            records.append(s3_record(world.aws.dataset_bucket, full, world.now, "removed"))
        else:
            world.aws.s3.put_object(Bucket=world.aws.dataset_bucket, Key=full, Body=body)
            records.append(s3_record(world.aws.dataset_bucket, full, world.now, etag=hashlib.md5(body).hexdigest()))
    world.deliver([s3_body(r) for r in records])


def run(world, accuracy, baseline, labels=CLASSES):  # noqa: F811
    """After the quiet period: a run trains and converts (its model scoring `accuracy`, production `baseline` on the
    same test photos) and is registered; answers the registration."""
    world.now += 601
    started = world.tick()
    assert started["action"] == "started", started
    world.sagemaker_event(training_state_event(started["job"], "Completed"))
    world.write_conversion_output(started["version"], accuracy, baseline, labels=labels)
    return world.sagemaker_event(processing_state_event(started["job"] + "-convert", "Completed"))


def photos(count=4, classes=CLASSES):
    return [(f"{label}/{label[0]}{i}.jpg", f"bytes of {label} {i}".encode()) for label in classes for i in range(count)]


def registered(world):  # noqa: F811
    return [e["detail"] for e in world.seen() if e["detail-type"] == "Model Registered"]


def test_photos_moved_to_another_class_leave_the_better_scoring_model_to_a_person(world):  # noqa: F811
    put(world, photos())
    first = run(world, 0.90, None)
    assert first["model_status"] == "approved" and "first model" in first["reason"]  # nothing to compare with
    production = first["version"]
    world.seen()

    # Three roses moved into tulips/, same bytes: production scored on these "tulips" looks worse; the new one wins.
    moved = [(f"roses/r{i}.jpg", f"bytes of roses {i}".encode()) for i in range(3)]
    put(world, [(key.replace("roses/", "tulips/"), body) for key, body in moved] + [(key, None) for key, _ in moved])
    second = run(world, 0.95, {"accuracy": 0.80})
    assert second["model_status"] == "pending"
    reason = second["reason"]
    assert reason.startswith(f"labels changed since production {production}: 3 of 12 photos in both data sets relabelled "
                             "(25.0%), more than max_relabel_share 5%, e.g. roses/r0.jpg -> tulips/r0.jpg: roses -> tulips; ")
    assert "(the gate: test accuracy 0.9500 vs production" in reason  # what the gate alone would have said
    # Where a person sees it: the run's outcome, the registry entry, the event; production still serves.
    status = world.status()
    assert status["last_outcome"]["reason"] == reason and status["last_outcome"]["model_status"] == "pending"
    models = {m["version"]: m for m in world.client.http.get("/models/detail").json_body["models"]}
    assert models[second["version"]]["status"] == "pending" and models[second["version"]]["reason"] == reason
    # A key caller reads that the gate held it, not which photos' labels changed (issue 28, item 4).
    public = {m["version"]: m for m in world.client.http.get("/models").json_body["models"]}[second["version"]]
    assert public["reason"] == "held by the promotion gate: an operator decides" and public["decided_by"] == "gate"
    assert "roses/r0.jpg" not in str(public) and "tulips/" not in str(public)
    assert world.client.http.get("/models/current").json_body["version"] == production
    (event,) = registered(world)
    assert (event["version"], event["status"], event["gate"]) == (second["version"], "pending", reason)
    # A person looks and approves: served from then on.
    approved = world.client.http.post(f"/models/{second['version']}/approve", body=b'{"reason": "roses were tulips"}',
                                      headers={"Content-Type": "application/json"})
    assert approved.status_code == 200 and world.client.http.get("/models/current").json_body["version"] == second["version"]
    public = {m["version"]: m for m in world.client.http.get("/models").json_body["models"]}[second["version"]]
    assert public["reason"] == "approved by an operator" and "roses were tulips" not in str(public)


def test_an_honest_growth_is_approved_and_a_new_class_waits(world):  # noqa: F811
    put(world, photos())
    first = run(world, 0.90, None)
    put(world, [(f"daisy/new-{i}.jpg", f"new daisy {i}".encode()) for i in range(5)])  # more photos, the same labels
    second = run(world, 0.92, {"accuracy": 0.90})
    assert second["model_status"] == "approved", second["reason"]
    assert second["reason"].endswith("; labels: 0 of 12 photos in both data sets relabelled (0.0%), classes unchanged")
    assert world.client.http.get("/models/current").json_body["version"] == second["version"] != first["version"]

    put(world, photos(classes=("sunflowers",)))
    third = run(world, 0.93, {"skipped": "the production model has other classes"}, labels=CLASSES + ("sunflowers",))
    assert third["model_status"] == "pending"
    assert third["reason"].startswith(f"labels changed since production {second['version']}: the classes changed (added sunflowers): ")
    assert world.client.http.get("/models/current").json_body["version"] == second["version"]


def test_a_production_manifest_that_cannot_be_read_leaves_the_model_to_a_person(world):  # noqa: F811
    put(world, photos())
    first = run(world, 0.90, None)
    world.aws.s3.put_object(Bucket=world.aws.artifacts, Key=f"manifests/{first['version']}.json", Body=b"not a manifest")
    put(world, [("daisy/more.jpg", b"more")])
    second = run(world, 0.95, {"accuracy": 0.90})
    assert second["model_status"] == "pending"
    assert second["reason"].startswith(f"cannot compare the labels with production {first['version']}'s: ManifestError: not JSON")

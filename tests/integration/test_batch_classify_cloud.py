"""Batch classification by upload (chalicelib/pipeline/batch_classify.py): photos under classify/ classified by the
served model into predictions/<batch>.jsonl, one output per delivery, idempotent under redelivery, never
training data; in the cloud (moto: the upload function with S3 notifications) and with a real `flowers up`
(and `flowers classify DIR` against it)."""
from __future__ import annotations

import hashlib
import json
import shutil
import time

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.pipeline import batch_classify
from chalicelib.pipeline.batch_classify import Photo, photos_in
from chalicelib.pipeline.dataset_version import is_relevant, version_of
from chalicelib.pipeline.records import ObjectInfo
from local_fixtures import Up, flowers, seed_approved_model
from pipeline_fixtures import aws, s3_body, s3_record, sample_photos, sqs_event, tiny_model  # noqa: F401  (fixtures)
from test_predict import register

BUCKET = "flowers-data"


# pure ---------------------------------------------------------------------------------------
def test_only_created_photos_under_classify_in_the_bucket_are_taken():
    bodies = [s3_body(s3_record(BUCKET, "classify/a.jpg", 1.0, etag="e1")),
              s3_body(s3_record(BUCKET, "classify/sub/b+1.png", 1.0, etag="e2")),  # URL-encoded in the notification
              s3_body(s3_record(BUCKET, "classify/a.jpg", 1.0, etag="e1")),  # the same event twice: once
              s3_body(s3_record(BUCKET, "classify/gone.jpg", 1.0, kind="removed")),
              s3_body(s3_record(BUCKET, "classify/notes.txt", 1.0)),
              s3_body(s3_record(BUCKET, "classify/.hidden.jpg", 1.0)),
              s3_body(s3_record(BUCKET, "datasets/flowers/roses/c.jpg", 1.0)),
              s3_body(s3_record("another-bucket", "classify/d.jpg", 1.0)),
              json.dumps({"Type": "Notification", "Message": s3_body(s3_record(BUCKET, "classify/e.jpg", 1.0, etag="e3"))}),
              "not json", json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}), json.dumps([1, 2])]
    assert photos_in(bodies, BUCKET) == [Photo("classify/a.jpg", "e1"), Photo("classify/e.jpg", "e3"), Photo("classify/sub/b+1.png", "e2")]


def test_a_batch_is_named_by_its_photos_whatever_their_order():
    a, b = Photo("classify/a.jpg", "1"), Photo("classify/b.jpg", "2")
    assert batch_classify.batch_name([a, b]) == batch_classify.batch_name([b, a]) != batch_classify.batch_name([a])
    assert batch_classify.batch_name([Photo("classify/a.jpg", "changed")]) != batch_classify.batch_name([a])


def test_classify_and_predictions_are_never_training_data():
    for key in ("classify/a.jpg", "predictions/x.jsonl", "classify/roses/b.jpg"):
        assert not is_relevant(key, "")
    assert not is_relevant("datasets/flowers/classify/a.jpg", "datasets/flowers/")
    assert is_relevant("roses/classify.jpg", "") and is_relevant("classify.jpg", "")
    data = [ObjectInfo("roses/a.jpg", "1", 1)]
    assert version_of(data + [ObjectInfo("classify/b.jpg", "2", 1)], "") == version_of(data, "")


# cloud: the upload function on moto -----------------------------------------------------------
@pytest.fixture
def cloud(aws):  # noqa: F811
    with Client(chalice_app.app) as client:
        yield client


def _deliver(aws, client, keys_and_bodies):  # noqa: F811
    records = []
    for key, body in keys_and_bodies:
        aws.s3.put_object(Bucket=aws.dataset_bucket, Key=key, Body=body)
        records.append(s3_record(aws.dataset_bucket, key, 1_700_000_000.0, etag=hashlib.md5(body).hexdigest()))
    event = sqs_event([s3_body(r) for r in records])
    return event, client.lambda_.invoke("on_upload", event).payload


def _outputs(aws):  # noqa: F811
    listed = aws.s3.list_objects_v2(Bucket=aws.dataset_bucket, Prefix="predictions/").get("Contents", [])
    return {o["Key"]: aws.s3.get_object(Bucket=aws.dataset_bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_photos_under_classify_are_classified_once_into_predictions(aws, cloud, tiny_model):  # noqa: F811
    register(aws, tiny_model)
    photos = [("classify/" + p.name, p.read_bytes()) for p in sample_photos(3)] + [("classify/broken.jpg", b"\xff\xd8 not a jpeg")]
    event, answer = _deliver(aws, cloud, photos)
    assert answer["batchItemFailures"] == [] and answer["classified"]["action"] == "classified"
    assert answer["changes"] == 0 and answer["classified"]["errors"] == 1  # nothing for the data set
    outputs = _outputs(aws)
    (key, raw), = outputs.items()
    assert key.startswith("predictions/") and key.endswith(".jsonl")
    lines = {line["key"]: line for line in map(json.loads, raw.decode().splitlines())}
    assert set(lines) == {k for k, _ in photos}
    labels = json.loads((tiny_model / "metadata.json").read_text())["labels"]
    for name, _ in photos[:3]:
        line = lines[name]
        assert line["model_version"] == "00000000000000a1" and "error" not in line and len(line["predictions"]) == len(labels)
        assert line["label"] in (*labels, None) and line["predictions"][0]["label"] in labels
        assert line["etag"] == hashlib.md5(dict(photos)[name]).hexdigest()
    assert lines["classify/broken.jpg"]["label"] is None and lines["classify/broken.jpg"]["error"]
    # Redelivered (SQS at least once): the same output, written once.
    before = aws.s3.head_object(Bucket=aws.dataset_bucket, Key=key)["LastModified"]
    again = cloud.lambda_.invoke("on_upload", event).payload
    assert again["classified"]["action"] == "done_before" and _outputs(aws) == outputs
    assert aws.s3.head_object(Bucket=aws.dataset_bucket, Key=key)["LastModified"] == before
    # Never training data: nothing pending, no run.
    assert cloud.http.get("/status").json_body["pending_uploads"] == 0


def test_without_a_model_the_lines_say_so_and_a_store_failure_sends_the_batch_back(aws, cloud, monkeypatch):  # noqa: F811
    from chalicelib.adapters.aws.s3_objects import S3ObjectStore

    photo = sample_photos(1)[0].read_bytes()
    _, answer = _deliver(aws, cloud, [("classify/early.jpg", photo)])
    (raw,) = _outputs(aws).values()
    line = json.loads(raw)
    assert answer["batchItemFailures"] == [] and line["label"] is None and line["error"].startswith("no_model")

    def broken(self, uri, data):
        raise OSError("S3 is unreachable")

    monkeypatch.setattr(S3ObjectStore, "write", broken)
    event, answer = _deliver(aws, cloud, [("classify/later.jpg", photo), ("datasets/flowers/roses/r.jpg", photo)])
    assert answer["classified"]["action"] == "failed"
    # Only the classify message comes back; the data set's upload was recorded.
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == [event["Records"][0]["messageId"]]
    assert answer["new"] == 1


# local: a real `flowers up` ---------------------------------------------------------------------
def test_flowers_up_classifies_what_lands_in_bucket_classify_and_flowers_classify_does_it_from_a_terminal(tmp_path, tiny_model):  # noqa: F811
    home = tmp_path / "home"
    version = seed_approved_model(home, tiny_model)
    up = Up(home, "--quiet-period", "1")
    try:
        inbox = home / "bucket" / "classify" / "batch-1"
        inbox.mkdir(parents=True)
        sent = sample_photos(3)
        for photo in sent:
            shutil.copyfile(photo, inbox / photo.name)
        (inbox / "broken.jpg").write_bytes(b"not a photo at all")
        outputs = home / "bucket" / "predictions"

        def lines():
            found = [json.loads(line) for f in sorted(outputs.glob("*.jsonl")) for line in f.read_text().splitlines()]
            return found if len(found) >= 4 else None

        found = up.wait_for(lines, 60, "predictions for the 4 files")
        assert sorted(line["key"] for line in found) == sorted([f"classify/batch-1/{p.name}" for p in sent] + ["classify/batch-1/broken.jpg"])
        assert all(line["model_version"] == version for line in found if "error" not in line)
        assert sum("error" in line for line in found) == 1
        up.wait_for(lambda: "classified 4 photo(s) under classify/ with the served model: " in up.log(), 10, "the console line")
        assert "bucket: 4 new or changed" not in up.log()  # not announced as uploads to train on
        time.sleep(2)  # a quiet period and more: the photos started no run
        status = up.get("status").json()
        assert status["pending_uploads"] == 0 and status["running_job"] is None and status["last_outcome"] is None

        # From a terminal: the same lines, through the running server's POST /predict.
        folder = tmp_path / "mine"
        shutil.copytree(inbox, folder / "sub")
        done = flowers(home, "classify", str(folder), "--out", str(tmp_path / "out.jsonl"))
        assert done.returncode == 1, done.stderr  # the broken one
        mine = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert [m["key"] for m in mine] == sorted(f"sub/{p.name}" for p in [*sent, inbox / "broken.jpg"])
        by_name = {line["key"].rsplit("/", 1)[1]: line for line in found}
        for line in mine:
            twin = by_name[line["key"].rsplit("/", 1)[1]]
            assert (line["label"], line["model_version"], "error" in line) == (twin["label"], twin["model_version"], "error" in twin)
            if "error" not in line:
                assert [p["label"] for p in line["predictions"]] == [p["label"] for p in twin["predictions"]]
        # Not a terminal: the progress bar is a line every 10 % on stderr.
        progress = [line for line in done.stderr.splitlines() if line.startswith("classify ")]
        assert 1 <= len(progress) <= 11 and "4/4" in progress[-1]
        assert "4 photo(s) classified by http://127.0.0.1:" in done.stderr
    finally:
        up.stop()


def test_flowers_classify_bucket_uploads_under_classify_then_waits_for_the_pipeline_s_lines(tmp_path, aws, cloud, tiny_model):  # noqa: F811
    import io
    import threading

    from flowers_cli.classify import to_bucket, wait_for_lines

    register(aws, tiny_model)
    folder = tmp_path / "photos"
    (folder / "a").mkdir(parents=True)
    for photo in sample_photos(2):
        shutil.copyfile(photo, folder / "a" / photo.name)
    (folder / "notes.txt").write_text("not a photo")
    uploaded = to_bucket(f"s3://{aws.dataset_bucket}/classify/today/", folder, show_progress=False, client=aws.s3)
    keys = sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=aws.dataset_bucket)["Contents"])
    assert uploaded.sent == 2 and keys == sorted(uploaded.photos) == sorted(f"classify/today/a/{p.name}" for p in sample_photos(2))
    assert uploaded.predictions == f"s3://{aws.dataset_bucket}/predictions/"
    assert to_bucket(f"s3://{aws.dataset_bucket}/classify/today/", folder, show_progress=False, client=aws.s3).sent == 0
    with pytest.raises(ValueError, match="go under s3://flowers-data/classify/"):
        to_bucket(f"s3://{aws.dataset_bucket}/datasets/flowers/", folder, show_progress=False, client=aws.s3)

    # The command waits; meanwhile the pipeline gets the bucket's notifications and writes its batch.
    out = io.StringIO()
    missing: list[int] = []
    waiter = threading.Thread(target=lambda: missing.append(wait_for_lines(uploaded, 30, out, aws.s3, poll=0.2, show_progress=False)))
    waiter.start()
    records = [s3_record(aws.dataset_bucket, key, 1_700_000_000.0, etag=etag) for key, etag in uploaded.photos.items()]
    assert cloud.lambda_.invoke("on_upload", sqs_event([s3_body(r) for r in records])).payload["classified"]["photos"] == 2
    waiter.join(40)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert missing == [0] and sorted(line["key"] for line in lines) == sorted(uploaded.photos)
    assert all(line["model_version"] == "00000000000000a1" for line in lines)
    # A photo the pipeline never classifies: the wait ends at its timeout and says how many are missing.
    uploaded.photos["classify/today/never.jpg"] = "0" * 32
    assert wait_for_lines(uploaded, 0.5, io.StringIO(), aws.s3, poll=0.2, show_progress=False) == 1

"""Batch classification by upload (chalicelib/pipeline/batch_classify.py): photos under classify/ classified by the
served model into predictions/<batch>.jsonl, one output per delivery, idempotent under redelivery, never
training data; in the cloud (moto: the upload function with S3 notifications). The pure parts:
tests/unit/test_batch_classify.py; a real `flowers up`: tests/e2e/test_batch_classify_up.py."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from chalice.test import Client

import app as chalice_app
from pipeline_fixtures import aws, s3_body, s3_record, sample_photos, sqs_event, tiny_model  # noqa: F401  (fixtures)
from test_predict import register


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


def test_a_photo_over_the_size_limit_gets_its_own_error_line_and_the_rest_are_classified(aws, cloud, tiny_model):  # noqa: F811
    from chalicelib.contract.imaging import MAX_IMAGE_BYTES

    register(aws, tiny_model)
    huge = sample_photos(1)[0].read_bytes()
    huge += b"\0" * (MAX_IMAGE_BYTES + 1 - len(huge))  # a JPEG with trailing bytes: one byte over the limit
    photos = [("classify/" + p.name, p.read_bytes()) for p in sample_photos(2)] + [("classify/huge.jpg", huge)]
    _, answer = _deliver(aws, cloud, photos)
    assert answer["batchItemFailures"] == [] and answer["classified"]["action"] == "classified"
    assert answer["classified"]["errors"] == 1
    (raw,) = _outputs(aws).values()
    lines = {line["key"]: line for line in map(json.loads, raw.decode().splitlines())}
    assert lines["classify/huge.jpg"]["error"].startswith("too_large:") and lines["classify/huge.jpg"]["label"] is None
    assert all("error" not in lines["classify/" + p.name] for p in sample_photos(2))


@pytest.mark.parametrize("where", ["s3", "local"])
def test_both_object_stores_read_no_more_than_asked(aws, tmp_path, where):  # noqa: F811
    """The bounded read batch classification uses (ObjectStore.read_start): S3's ranged GET and the folder's read agree."""
    from chalicelib.adapters.aws.s3_objects import S3ObjectStore
    from chalicelib.adapters.local.objects import LocalObjectStore

    objects = S3ObjectStore(aws.s3) if where == "s3" else LocalObjectStore({aws.dataset_bucket: tmp_path})
    base = f"s3://{aws.dataset_bucket}/"
    for name, body in (("ten", b"0123456789"), ("empty", b"")):
        objects.write(objects.join(base, name), body)
    assert objects.read_start(objects.join(base, "ten"), 4) == b"0123"
    assert objects.read_start(objects.join(base, "ten"), 11) == b"0123456789"  # smaller than asked: all of it
    assert objects.read_start(objects.join(base, "empty"), 1) == b""

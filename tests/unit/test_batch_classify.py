"""chalicelib/pipeline/batch_classify.py: which photos of a delivery are classified, the name of their batch, and the
answer the upload Lambda gives of it."""
from __future__ import annotations

import json

from chalicelib.contract.vocabulary import Action
from chalicelib.pipeline import batch_classify
from chalicelib.pipeline.batch_classify import BatchResult, Photo, photos_in
from pipeline_fixtures import s3_body, s3_record


BUCKET = "flowers-data"


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


def test_the_batch_answer_has_the_keys_each_outcome_has_in_order():
    uri = "s3://flowers-data/predictions/0123.jsonl"
    assert list(BatchResult(Action.NONE, 0).as_dict().items()) == [("action", "none"), ("photos", 0)]
    assert list(BatchResult(Action.DONE_BEFORE, 2, uri).as_dict().items()) == [("action", "done_before"), ("photos", 2), ("output", uri)]
    assert list(BatchResult(Action.CLASSIFIED, 2, uri, errors=0).as_dict().items()) == [
        ("action", "classified"), ("photos", 2), ("output", uri), ("errors", 0)]
    assert list(BatchResult(Action.FAILED, 3).as_dict().items()) == [("action", "failed"), ("photos", 3)]


def test_a_delivery_without_photos_builds_no_classifier_and_sends_nothing_back():
    def classifier() -> batch_classify.Classifier:
        raise AssertionError("built for a delivery without photos")

    bodies = [("m1", s3_body(s3_record(BUCKET, "roses/a.jpg", 1.0))), ("m2", "not json")]
    assert batch_classify.on_messages(bodies, None, BUCKET, classifier) == (BatchResult(Action.NONE, 0), [])  # type: ignore[arg-type]


def test_no_photo_is_started_once_the_deadline_passed():
    class Counting:
        def __init__(self):
            self.calls = 0

        def passed(self):  # the Lambda's time runs short after two photos
            self.calls += 1
            return self.calls > 2

    photos = [Photo(f"classify/{i}.jpg", str(i)) for i in range(4)]
    read = []

    class NoModel:
        def predict(self, image, top_k):
            return None

    lines = batch_classify.classify(photos, lambda key: read.append(key) or b"x", NoModel(), time_left=Counting())  # type: ignore[arg-type]
    assert [line["key"] for line in lines] == read == ["classify/0.jpg", "classify/1.jpg"]
    assert list(BatchResult(Action.CLASSIFIED, 2, "s3://b/p.jsonl", errors=0, deferred=2).as_dict().items()) == [
        ("action", "classified"), ("photos", 2), ("output", "s3://b/p.jsonl"), ("errors", 0), ("deferred", 2)]

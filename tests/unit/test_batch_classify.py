"""chalicelib/pipeline/batch_classify.py: which photos of a delivery are classified, and the name of their batch."""
from __future__ import annotations

import json

from chalicelib.pipeline import batch_classify
from chalicelib.pipeline.batch_classify import Photo, photos_in
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

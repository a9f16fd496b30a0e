"""`flowers push --bucket s3://...`: the cloud data set bucket, through moto's S3."""
import boto3
import pytest
from moto import mock_aws

from flowers_cli.push import S3Destination, push
from data_fixtures import copy_photos


@pytest.fixture
def s3(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="flowers-data")
        yield client


def test_push_uploads_once_and_reports_bad_files(tmp_path, s3):
    source = copy_photos(tmp_path / "photos", 2, classes=("daisy", "roses"), layout="modelarts")
    (source / "broken.jpg").write_bytes(b"not a photo")
    (source / "broken.txt").write_text("daisy")

    first = push(source, S3Destination("s3://flowers-data/datasets/flowers", client=s3), show_progress=False)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="flowers-data")["Contents"])
    # 4 photos, their 4 labels, broken.txt and the broken photo: reported, and sent all the same (as `aws s3 sync`
    # would), so that the training job's validation report lists it in GET /status
    assert first.copied == 10 and [name for name, _ in first.bad] == ["broken.jpg"]
    assert first.bad[0][1].startswith("not_an_image")
    assert all(key.startswith("datasets/flowers/") for key in keys) and len(keys) == 10
    head = s3.head_object(Bucket="flowers-data", Key=next(k for k in keys if k.endswith(".jpg")))
    assert head["ContentType"] == "image/jpeg"

    again = push(source, S3Destination("s3://flowers-data/datasets/flowers/", client=s3), show_progress=False)
    assert again.copied == 0 and again.unchanged == 10  # idempotent: same bytes are not sent twice


@pytest.mark.parametrize("url", ["flowers-data/x", "s3://", "s3:///prefix"])
def test_bad_bucket_urls(url, s3):
    with pytest.raises(ValueError, match="--bucket takes"):
        S3Destination(url, client=s3)

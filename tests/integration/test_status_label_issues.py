"""GET /status/label-issues/thumbnail: a small JPEG of a photo the last run lists (moto); the report's pure parts:
tests/unit/test_validation_report.py."""
from __future__ import annotations

import io
import json

from pipeline_fixtures import aws, training_state_event  # noqa: F401  (fixture)


def test_thumbnails_of_listed_photos_only(aws, tmp_path):  # noqa: F811
    """GET /status/label-issues/thumbnail serves a small JPEG of a photo the last run lists, read from the data set;
    any other file (listed nowhere, or gone) is a 404 in the API's error shape."""
    from chalice.test import Client
    from PIL import Image

    import app as chalice_app
    from data_fixtures import PHOTOS, require_photos
    from test_pipeline_aws import World
    from test_status_validation import put_job_output

    require_photos()
    photo = sorted((PHOTOS / "roses").glob("*.jpg"))[0].read_bytes()
    with Client(chalice_app.app) as client:
        world = World(aws, client)
        world.upload(["tulips/mislabelled.jpg", "roses/b.jpg"], content=photo)
        world.now += 601
        first = world.tick()
        report = {"usable_images": 2, "label_issues": {"count": 2, "photos": 2, "issues": [
            {"file": "tulips/mislabelled.jpg", "given": "tulips", "suggested": "roses", "confidence": 0.9},
            {"file": "roses/gone.jpg", "given": "roses", "suggested": "tulips", "confidence": 0.8}]}}
        put_job_output(world, first["job"], report)
        world.sagemaker_event(training_state_event(first["job"], "Completed"))
        assert world.status()["validation"]["label_issues"]["count"] == 2

        answer = client.http.get("/status/label-issues/thumbnail?file=tulips%2Fmislabelled.jpg", headers={"Accept": "image/jpeg"})
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg", answer.body[:300]
        with Image.open(io.BytesIO(answer.body)) as thumbnail:
            assert thumbnail.format == "JPEG" and thumbnail.size == (128, 128)
        for file in ("roses/b.jpg", "roses/gone.jpg", "", "../../etc/passwd"):
            missing = client.http.get(f"/status/label-issues/thumbnail?file={file}", headers={"Accept": "image/jpeg"})
            assert missing.status_code == 404 and json.loads(missing.body)["error"]["code"] == "not_found", file

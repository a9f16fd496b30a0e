"""The web page (`GET /`) and the pictures it shows, served by the app in both modes.

The page is one static file (plain HTML, CSS and a little JavaScript, no build step) that
calls the same HTTP API as any client, with relative URLs, so it works under API
Gateway's stage path as well as on `flowers up`'s http://127.0.0.1:PORT/.
"""
from __future__ import annotations

import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from chalicelib.contract import bucket_layout as layout
from chalicelib.contract import imaging

from chalicelib import services
from chalicelib.api import security_headers
from chalicelib.api.errors import not_found
from chalicelib.contract.charts import confusion_matrix_png

PAGE = Path(__file__).with_name("index.html")
THUMBNAIL = 128  # pixels a side of a listed photo's thumbnail (squashed, as the model sees it)


@lru_cache(maxsize=1)
def index_html() -> str:
    return PAGE.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def page_headers() -> dict[str, str]:
    """The page's own Content-Security-Policy: its inline script and style by hash (security_headers.page_policy)."""
    return {"Content-Security-Policy": security_headers.page_policy(index_html())}


def confusion_png(version: str) -> bytes:
    """The confusion matrix of a registered model on its test photos (rows true, columns predicted);
    `version` was checked against its schema (app.py)."""
    svc = services.get()
    entry = svc.registry.find(version)
    if entry is None or not entry.metadata_uri:
        raise not_found(f"no registered model version {version!r}")
    return _draw(entry.metadata_uri, entry.sha256)


def label_issue_thumbnail(file: str) -> bytes:
    """A small JPEG of a photo GET /status lists as likely mislabelled (`?file=`); only those (this is no file server)."""
    svc = services.get()
    validation: dict[str, Any] = svc.read_model.status().get("validation") or {}
    listed = {str(issue.get("file")) for issue in (validation.get("label_issues") or {}).get("issues") or []}
    if not file or file not in listed:
        raise not_found("not a photo the last run lists as likely mislabelled")
    if not layout.is_inside(file):  # a report names what a data set held: its names are the uploaders'
        raise not_found("not a photo inside the data set")
    uri = svc.objects.join(svc.settings.dataset_uri, file)
    if not svc.objects.exists(uri):  # gone since the run; any other error (a refused read) is a 500, logged
        raise not_found("the photo is no longer in the data set")
    try:
        pixels = imaging.load_pixels(svc.objects.read(uri), THUMBNAIL).pixels
    except imaging.ImageError as exc:
        raise not_found(f"the photo cannot be shown: {exc}") from None
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=85)
    return out.getvalue()


@lru_cache(maxsize=64)
def _draw(metadata_uri: str, sha256: str) -> bytes:  # a model's metadata never changes: draw it once
    metadata = json.loads(services.get().objects.read(metadata_uri))
    test = (metadata.get("metrics") or {}).get("test") or {}
    matrix, labels = test.get("confusion_matrix"), metadata.get("labels")
    if not matrix or not labels:
        raise not_found("this model's metadata.json has no confusion matrix")
    return confusion_matrix_png(matrix, labels)

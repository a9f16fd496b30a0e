"""Bounded decoding (tests/unit/test_bounded_decoding.py) where it matters: the memory a decompression bomb costs,
measured in a fresh process; training's report of oversized and unsupported photos; the API's answers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from data_fixtures import ROOT, encode, jpeg_claiming, photo_like, png_claiming, sixteen_bit_png
from pipeline_fixtures import aws, tiny_model  # noqa: F401  (fixtures)
from test_predict import client, error_of, register  # noqa: F401  (the API's test client and helpers)
from training import dataset as ds


MEASURE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from chalicelib.contract.imaging import ImageError, load_pixels

    def kb(field):
        return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))

    data = Path(sys.argv[1]).read_bytes()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = kb("VmRSS")
    try:
        outcome = "x".join(map(str, load_pixels(data, 224).pixels.shape))
    except ImageError as exc:
        outcome = exc.reason
    print(outcome, (kb("VmHWM") - before) / 1024)
""")


def peak_extra_mb(tmp_path: Path, data: bytes) -> tuple[str, float]:
    """load_pixels in a fresh process: its outcome and how far its peak RSS rose above the RSS before the call."""
    path = tmp_path / "image"
    path.write_bytes(data)
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    outcome, mb = out.stdout.split()[-2:]
    return outcome, float(mb)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's peak-RSS reset")
def test_memory_is_bounded_by_the_pixel_cap_not_the_content(tmp_path):
    # The attack: 9000 x 9000 16-bit grayscale, ~1 MB of PNG. It used to take 1.5 GB (float64 at full size).
    outcome, mb = peak_extra_mb(tmp_path, sixteen_bit_png(9000, 9000))
    assert outcome == "image_too_large" and mb < 20, (outcome, mb)
    # Just under the cap (49 MP): decoded, and the cost is the decoded buffer (2 bytes a pixel, 93 MiB) plus
    # a few MB, where converting at full size took 930 MB.
    outcome, mb = peak_extra_mb(tmp_path, sixteen_bit_png(7000, 7000))
    assert outcome == "224x224x3" and mb < 7000 * 7000 * 2 / 2**20 + 30, (outcome, mb)


def test_dataset_reports_oversized_and_unsupported_photos_as_skipped(tmp_path):
    root = tmp_path / "data"
    for c, label in enumerate(("red", "green")):
        (root / label).mkdir(parents=True)
        for i in range(5):
            encode_to = root / label / f"{label}_{i}.png"
            encode_to.write_bytes(encode(photo_like(48, 48, seed=c * 10 + i), "PNG"))
    (root / "red" / "huge.png").write_bytes(png_claiming(9000, 9000))
    (root / "green" / "anim.png").write_bytes(encode(photo_like(48, 48, seed=99), "GIF"))  # a GIF under a .png name
    data = ds.load(root, 32, min_images_per_class=3)
    ds.write_report(data, tmp_path / "out" / "validation.json")
    report = json.loads((tmp_path / "out" / "validation.json").read_text())
    skipped = {item["path"]: item for item in report["skipped"]}
    assert skipped["red/huge.png"]["reason"] == "image_too_large" and "81.0 megapixels" in skipped["red/huge.png"]["detail"]
    assert skipped["green/anim.png"]["reason"] == "unsupported_image_type"
    assert report["usable_images"] == 10


@pytest.mark.parametrize("content_type, body, expected", [
    ("application/octet-stream", lambda: encode(photo_like(96, 64), "GIF"), (415, "unsupported_image_type")),
    ("image/png", lambda: encode(photo_like(96, 64), "TIFF"), (415, "unsupported_image_type")),
    ("image/png", lambda: png_claiming(9000, 9000), (413, "image_too_large")),
    ("image/jpeg", lambda: jpeg_claiming(8000, 7000), (413, "image_too_large")),
    ("image/png", lambda: sixteen_bit_png(9000, 9000), (413, "image_too_large")),
])
def test_api_answers_unsupported_and_oversized_images(aws, client, tiny_model, content_type, body, expected):  # noqa: F811
    register(aws, tiny_model)
    response = client.http.post("/predict", headers={"Content-Type": content_type}, body=body())
    assert error_of(response) == expected

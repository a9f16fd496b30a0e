"""Bounded decoding: only the README's formats, a pixel cap read from the header, large
images reduced before they are converted. Real images made with Pillow; no mocks."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from chalicelib.contract import imaging
from chalicelib.contract.imaging import MAX_PIXELS, ImageError, load_pixels
from pipeline_fixtures import aws, tiny_model  # noqa: F401  (fixtures)
from test_predict import client, error_of, register  # noqa: F401  (the API's test client and helpers)
from training import dataset as ds

ROOT = Path(__file__).resolve().parent.parent


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    if fmt == "PNG":
        kwargs.setdefault("compress_level", 0)  # stored: these tests make many megapixels of PNG
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour regions, edges and grain: a stand-in for a photo, with an asymmetric layout."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(coarse, np.float64) + rng.normal(0, 10, (height, width, 3))
    pixels[: height // 3, : width // 4] = (250, 20, 20)  # a red block top left: orientation shows
    pixels[height // 2:, width // 2: width // 2 + width // 20] = (10, 10, 200)  # a blue bar
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def sixteen_bit_png(width: int, height: int) -> bytes:
    """A 16-bit grayscale PNG (a ramp), written row by row: little memory to make, ~1 MB at 9000 x 9000."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + np.linspace(1000, 60000, width).astype(">u2").tobytes()
    compressor = zlib.compressobj(6)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height: decoding it would fail as corrupt."""
    data = bytearray(encode(Image.new("RGB", (64, 64), (9, 99, 199)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (64, 64), (9, 99, 199)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def reference(data: bytes, size: int) -> np.ndarray:
    """The straightforward conversion: the whole image, full size (after JPEG's draft, as always), then resized."""
    img = Image.open(io.BytesIO(data))
    img.draft("RGB", (size, size))
    img = ImageOps.exif_transpose(img)
    if img.mode == "I;16":
        arr = np.asarray(img, np.float64)
        img = Image.fromarray((arr * (255.0 / arr.max())).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img.convert("RGBA"))
    return np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))


# --- formats ---------------------------------------------------------------------------------
UNSUPPORTED = ["GIF", "TIFF", "ICO", "TGA", "PCX", "PPM", "SGI", "IM", "QOI", "JPEG2000", "DDS", "MSP", "XBM",
               "SPIDER", "EPS", "AVIF", "DIB"]


@pytest.mark.parametrize("fmt", UNSUPPORTED)
def test_formats_the_readme_does_not_name_are_unsupported(fmt):
    mode = {"MSP": "1", "XBM": "1", "SPIDER": "F"}.get(fmt, "RGB")
    try:
        data = encode(photo_like(96, 64).convert(mode), fmt)
    except (KeyError, OSError) as exc:  # this Pillow build cannot write it
        pytest.skip(f"Pillow cannot save {fmt} here: {exc}")
    with pytest.raises(ImageError) as err:
        load_pixels(data, 32)
    assert err.value.reason == "unsupported_image_type"
    assert Image.open(io.BytesIO(data)).format in err.value.detail  # names what was sent


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "WEBP"])
def test_the_four_formats_still_decode(fmt):
    assert load_pixels(encode(photo_like(96, 64), fmt), 32).pixels.shape == (32, 32, 3)


# --- the pixel cap -----------------------------------------------------------------------------
@pytest.mark.parametrize("claiming", [png_claiming, jpeg_claiming])
def test_pixel_cap_is_read_from_the_header(claiming):
    # The header claims 8000 x 7000 (56 MP); the data is 64 x 64: any attempt to decode would be "corrupt".
    with pytest.raises(ImageError) as err:
        load_pixels(claiming(8000, 7000), 224)
    assert err.value.reason == "image_too_large" and "56.0 megapixels" in err.value.detail


def test_the_cap_itself_passes_the_header():
    assert MAX_PIXELS == 10000 * 5000
    with pytest.raises(ImageError) as err:
        load_pixels(png_claiming(10000, 5000), 224)
    assert err.value.reason == "corrupt"  # decoded, and the decoder found the lie


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


# --- the pixels ----------------------------------------------------------------------------------
def exif(orientation: int) -> Image.Exif:
    tags = Image.Exif()
    tags[0x0112] = orientation
    return tags


@cache
def variants(width: int, height: int) -> dict[str, bytes]:
    img = photo_like(width, height)
    rgba = img.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(img.size))
    la = img.convert("L")
    la.putalpha(Image.linear_gradient("L").rotate(90).resize(img.size))
    ramp = np.asarray(img.convert("L"), np.uint16) * 200 + np.linspace(0, 4000, width).astype(np.uint16)
    palette = img.quantize(64, method=Image.Quantize.FASTOCTREE)
    transparent = palette.copy()
    transparent.info["transparency"] = 3
    return {
        "16-bit PNG": encode(Image.fromarray(ramp), "PNG"),
        "palette PNG": encode(palette, "PNG"),
        "palette PNG, transparent index": encode(transparent, "PNG"),
        "palette BMP": encode(palette, "BMP"),
        "RGBA PNG": encode(rgba, "PNG"),
        "LA PNG": encode(la, "PNG"),
        "RGBA WEBP (lossless)": encode(rgba, "WEBP", lossless=True, quality=0, method=0),
        "CMYK JPEG": encode(img.convert("CMYK"), "JPEG", quality=95),
        "grayscale JPEG": encode(img.convert("L"), "JPEG", quality=95),
        **{f"JPEG, EXIF orientation {o}": encode(img, "JPEG", quality=95, exif=exif(o)) for o in (3, 6, 8)},
        **{f"PNG, EXIF orientation {o}": encode(img, "PNG", exif=exif(o)) for o in range(2, 9)},
        "RGBA PNG, EXIF orientation 5": encode(rgba, "PNG", exif=exif(5)),
    }


NAMES = sorted(variants(64, 48))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [64, 32])
def test_large_images_look_the_same_as_a_full_size_conversion(name, size):
    # 2000 x 1200 (2.4 MP): PNG, BMP and WEBP are box-reduced first. JPEG is drafted to 1/8 at decode,
    # as before, which leaves too few pixels to reduce: compared all the same.
    data = variants(2000, 1200)[name]
    got = load_pixels(data, size)
    diff = np.abs(got.pixels.astype(int) - reference(data, size).astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 12, (diff.mean(), diff.max())
    swapped = any(f"orientation {o}" in name for o in (5, 6, 7, 8))
    assert got.original_size == ((1200, 2000) if swapped else (2000, 1200))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("width, height, size", [(500, 333, 224), (500, 333, 32), (1600, 1200, 32)])
def test_ordinary_photos_take_the_old_path_exactly(name, width, height, size):
    # Up to 2 MP nothing is reduced, however small the target: the very same pixels as before.
    data = variants(width, height)[name]
    assert np.array_equal(load_pixels(data, size).pixels, reference(data, size))


def test_large_path_keeps_orientation_and_colour():
    # Beyond the tolerance check: the red block of the photo ends where a viewer shows it.
    data = encode(photo_like(2000, 1200), "PNG", exif=exif(6))  # "rotate 90 clockwise to display"
    pixels = load_pixels(data, 64).pixels
    top_right = pixels[2:18, -12:-2].reshape(-1, 3).mean(axis=0)
    assert top_right[0] > 200 and top_right[1] < 60 and top_right[2] < 60


def test_original_size_is_the_files_even_when_jpeg_is_drafted():
    decoded = load_pixels(encode(photo_like(1000, 750), "JPEG"), 32)  # decoded at 1/8 scale
    assert decoded.original_size == (1000, 750)


# --- training's validation -------------------------------------------------------------------------
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


def test_strips_cover_every_row(monkeypatch):
    # Strips of whole boxes, the last one short: the same pixels as one strip.
    data = variants(2000, 1200)["palette PNG, transparent index"]
    whole = load_pixels(data, 64).pixels
    monkeypatch.setattr(imaging, "STRIP_PIXELS", 2000 * 9 * 3)  # factor (15, 9) at 64 px: 27-row strips, 45 of them
    assert np.array_equal(load_pixels(data, 64).pixels, whole)


# --- the API ---------------------------------------------------------------------------------------
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

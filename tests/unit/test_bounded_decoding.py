"""Bounded decoding: only the README's formats, a pixel cap read from the header, large
images reduced before they are converted. Real images made with Pillow; no mocks. The memory a bomb costs,
training's report and the API's answers: tests/integration/test_oversized_images.py."""
from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from PIL import Image, ImageOps

from chalicelib.contract import imaging
from chalicelib.contract.imaging import MAX_PIXELS, ImageError, load_pixels
from data_fixtures import encode, jpeg_claiming, photo_like, png_claiming


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


def test_strips_cover_every_row(monkeypatch):
    # Strips of whole boxes, the last one short: the same pixels as one strip.
    data = variants(2000, 1200)["palette PNG, transparent index"]
    whole = load_pixels(data, 64).pixels
    monkeypatch.setattr(imaging, "STRIP_PIXELS", 2000 * 9 * 3)  # factor (15, 9) at 64 px: 27-row strips, 45 of them
    assert np.array_equal(load_pixels(data, 64).pixels, whole)

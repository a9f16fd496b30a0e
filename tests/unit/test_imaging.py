"""chalicelib.contract.imaging: the one decode path shared by training and serving."""
import io

import numpy as np
import pytest
from PIL import Image

from chalicelib.contract.imaging import ImageError, has_image_extension, load_pixels


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def test_exif_orientation_is_applied():
    # A 80x40 photo whose EXIF says "rotate 90°": it must come out as 40 wide, 80 tall.
    img = Image.new("RGB", (80, 40), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 40, 40))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    decoded = load_pixels(encode(img, "JPEG", exif=exif, quality=95), 64)
    assert decoded.original_size == (40, 80)
    # After a clockwise turn the blue (left) half ends on top.
    top, bottom = decoded.pixels[:16].mean(axis=(0, 1)), decoded.pixels[-16:].mean(axis=(0, 1))
    assert top[2] > 200 and top[0] < 60
    assert bottom[0] > 200 and bottom[2] < 60


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "LA", "P", "I;16", "1"])
def test_every_colour_mode_becomes_rgb(mode):
    img = Image.new("RGB", (40, 40), (120, 60, 30)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"  # PNG holds I;16 (16-bit grayscale)
    decoded = load_pixels(encode(img, fmt), 32)
    assert decoded.pixels.shape == (32, 32, 3) and decoded.pixels.dtype == np.uint8


def test_alpha_is_composited_on_white():
    img = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # fully transparent red
    assert load_pixels(encode(img, "PNG"), 32).pixels.min() == 255


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty_file"),
        (b"this is a text file, not a photo", "not_an_image"),
        (encode(Image.new("RGB", (31, 200)), "PNG"), "too_small"),
    ],
)
def test_bad_bytes_get_a_reason(data, reason):
    with pytest.raises(ImageError) as err:
        load_pixels(data, 32)
    assert err.value.reason == reason


def test_truncated_jpeg_is_corrupt():
    whole = encode(Image.effect_noise((200, 200), 50).convert("RGB"), "JPEG")
    with pytest.raises(ImageError) as err:
        load_pixels(whole[: len(whole) // 2], 32)
    assert err.value.reason == "corrupt"


def test_decompression_bomb(monkeypatch):
    data = encode(Image.new("RGB", (300, 300)), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300 - 1)  # warning zone (1x-2x)
    with pytest.raises(ImageError) as err:
        load_pixels(data, 32)
    assert err.value.reason == "decompression_bomb"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # error zone (> 2x)
    with pytest.raises(ImageError) as err:
        load_pixels(data, 32)
    assert err.value.reason == "decompression_bomb"


@pytest.mark.parametrize("name, ok", [("a.JPG", True), ("b.Jpeg", True), ("c.webp", True), ("d.BMP", True),
                                      ("e.png", True), ("f.gif", False), ("g.txt", False), ("jpg", False)])
def test_image_extensions(name, ok):
    assert has_image_extension(name) is ok

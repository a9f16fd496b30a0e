"""Image decoding shared by training and serving.

Training (`training/`) and the prediction function both call `load_pixels`, so a photo
becomes exactly the same pixels in both places: EXIF orientation applied, converted to
RGB (alpha composited on white), squashed to the model's square input with Pillow's
bilinear filter. Only Pillow and NumPy: the Lambda zip must stay free of TensorFlow.

Decoding is bounded, because the prediction API decodes whatever an attacker sends:
- only JPEG, PNG, BMP and WEBP are decoded; anything else Pillow knows is identified from its
  header, to name it, and refused (`unsupported_image_type`);
- the pixel count is checked from the header before decoding (`image_too_large` above
  MAX_PIXELS), besides Pillow's own decompression-bomb limit;
- a large image is reduced before it is converted: JPEG at decode time (`draft`, as always),
  then any image over FULL_SIZE_PIXELS with a side of 2 x REDUCING_GAP x the target or more
  by an integer box filter to 2-3x the target, converted strip by strip. So a request costs
  at most its decoded size (at most 4 bytes per pixel under the cap; a progressive JPEG's
  decoder holds up to 6) plus a few megabytes, whatever its content (16-bit, palette, alpha).
Everything else, ordinary photos included, takes exactly the steps it took before reduction
existed: every photo of the flowers data set gives the same pixels as before, at any size.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
# Pillow's names for the formats above (the README's promise).
FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
MIN_SIDE = 32
# Checked from the header, before decoding: 8000 x 6000 (a 48 MP phone camera) passes.
MAX_PIXELS = 50_000_000
# The most bytes of one photo classified, by POST /predict (why 4 MiB: chalicelib/api/predict_request.py, which
# publishes it in the OpenAPI document) and by batch classification (chalicelib/pipeline/batch_classify.py).
MAX_IMAGE_BYTES = 4 * 1024 * 1024
# An image over FULL_SIZE_PIXELS (after JPEG's draft) is box-reduced by whole factors to at least
# REDUCING_GAP times the target size per side, then resized with RESIZE_FILTER as before (what
# Pillow's `reducing_gap` does). Up to FULL_SIZE_PIXELS the old full-size steps cost < 50 MB.
FULL_SIZE_PIXELS = 2_000_000
REDUCING_GAP = 2
# Pixels per strip when a large image is converted before reduction (bounds the temporaries).
STRIP_PIXELS = 1 << 18
RESIZE_FILTER = Image.Resampling.BILINEAR
# Written into metadata.json so a mobile client can reproduce the input exactly.
PREPROCESSING = {
    "decode": "EXIF transpose, RGB (alpha composited on white)",
    "resize": "bilinear, squash to input size (no crop); over 2 megapixels, a side of 4x the input "
              "size or more is first box-reduced by a whole factor to between 2x and 3x",
    "dtype": "float32",
    "range": [0, 255],
}

# A truncated file must be reported, never silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_HIGH_BIT_DEPTH = ("I;16", "I;16B", "I;16L", "I", "F")
_WITH_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
_TRANSPOSE = {  # EXIF orientation -> the transposition that displays it upright (as ImageOps.exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = (Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270, Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90)


class ImageError(ValueError):
    """A file that cannot be used as a photo. `reason` is a stable code for reports and APIs."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodedImage:
    pixels: npt.NDArray[np.uint8]  # (size, size, 3)
    original_size: tuple[int, int]  # (width, height) of the file, after EXIF transpose


def has_image_extension(name: str) -> bool:
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def _to_rgb(img: Image.Image, top: float | None = None) -> Image.Image:
    """RGB, alpha composited on white. `top`: the whole image's maximum, when `img` is one strip of it."""
    if img.mode == "RGB":
        return img
    if img.mode in _HIGH_BIT_DEPTH:
        # 16-bit and float grayscale: scale to 8 bit instead of clipping to white.
        arr = np.asarray(img, dtype=np.float64)
        if top is None:
            top = float(arr.max()) or 1.0
        img = Image.fromarray((arr * (255.0 / top)).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in _WITH_ALPHA:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        pass
    try:  # identification only (no pixel is decoded): name what was sent
        with Image.open(io.BytesIO(data)) as other:
            kind = other.format or "unknown"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise
    except Exception:  # nothing Pillow can identify either
        raise ImageError("not_an_image", "not a JPEG, PNG, BMP or WEBP image") from None
    raise ImageError("unsupported_image_type", f"{kind} images are not accepted; send JPEG, PNG, BMP or WEBP")


def _orientation(img: Image.Image) -> Image.Transpose | None:
    try:
        return _TRANSPOSE.get(img.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # a broken EXIF block should not cost the photo
        return None


def _reduce(img: Image.Image, factor: tuple[int, int]) -> Image.Image:
    """RGB of `img` box-reduced by `factor`, converted strip by strip (never a full-size copy)."""
    if img.mode == "RGB":
        return img.reduce(factor)
    width, height = img.size
    fy = factor[1]
    rows = max(1, STRIP_PIXELS // (width * fy)) * fy  # whole boxes per strip
    deep = img.mode in _HIGH_BIT_DEPTH  # reduced as 32-bit, scaled to 8 bit once reduced
    out = Image.new(("F" if img.mode == "F" else "I") if deep else "RGB", (-(-width // factor[0]), -(-height // fy)))
    for y in range(0, height, rows):
        strip = img.crop((0, y, width, min(height, y + rows)))
        out.paste((strip.convert(out.mode) if deep else _to_rgb(strip)).reduce(factor), (0, y // fy))
    if not deep:
        return out
    high = img.getextrema()[1]  # (min, max) for these one-band modes: scale by the whole image's maximum
    return _to_rgb(out, (float(high) if isinstance(high, (int, float)) else 0.0) or 1.0)


def load_pixels(data: bytes, size: int) -> DecodedImage:
    """Decode image bytes into a (size, size, 3) uint8 array, or raise ImageError."""
    if not data:
        raise ImageError("empty_file", "the file has zero bytes")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit: treat both as a bomb.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open(data)
            width, height = img.size
            if min(width, height) < MIN_SIDE:
                raise ImageError("too_small", f"{width}x{height} px, need at least {MIN_SIDE} px per side")
            if width * height > MAX_PIXELS:
                raise ImageError("image_too_large", f"{width}x{height} px is {width * height / 1e6:.1f} megapixels; "
                                                    f"the limit is {MAX_PIXELS / 1e6:g}")
            # JPEG only: decode at a reduced scale that is still >= the target size (much faster).
            img.draft("RGB", (size, size))
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("decompression_bomb", str(exc)) from None
    except UnidentifiedImageError:
        raise ImageError("not_an_image", "not a JPEG, PNG, BMP or WEBP image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError("corrupt", f"cannot decode: {exc}") from None
    method = _orientation(img)
    original_size = (height, width) if method in _SWAPS_SIDES else (width, height)
    factor = (max(1, img.width // (REDUCING_GAP * size)), max(1, img.height // (REDUCING_GAP * size)))
    if factor == (1, 1) or img.width * img.height <= FULL_SIZE_PIXELS:  # convert at full size, as always
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block should not cost the photo
            pass
        img = _to_rgb(img)
        if img.size != (size, size):
            img = img.resize((size, size), RESIZE_FILTER)
        return DecodedImage(np.asarray(img, dtype=np.uint8), original_size)
    # Large: reduce first, then resize the (partial) boxes exactly as Pillow's reducing_gap does,
    # then transpose the square result (transposing commutes with squashing to a square).
    box = (0.0, 0.0, img.width / factor[0], img.height / factor[1])
    small = _reduce(img, factor).resize((size, size), RESIZE_FILTER, box=box)
    if method is not None:
        small = small.transpose(method)
    return DecodedImage(np.asarray(small, dtype=np.uint8), original_size)

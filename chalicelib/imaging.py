"""Image decoding shared by training and serving.

Training (`training/`) and the prediction function both call `load_pixels`, so a photo
becomes exactly the same pixels in both places: EXIF orientation applied, converted to
RGB (alpha composited on white), squashed to the model's square input with Pillow's
bilinear filter. Only Pillow and NumPy: the Lambda zip must stay free of TensorFlow.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
MIN_SIDE = 32
RESIZE_FILTER = Image.Resampling.BILINEAR
# Written into metadata.json so a mobile client can reproduce the input exactly.
PREPROCESSING = {
    "decode": "EXIF transpose, RGB (alpha composited on white)",
    "resize": "bilinear, squash to input size (no crop)",
    "dtype": "float32",
    "range": [0, 255],
}

# A truncated file must be reported, never silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValueError):
    """A file that cannot be used as a photo. `reason` is a stable code for reports and APIs."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # (size, size, 3) uint8
    original_size: tuple[int, int]  # (width, height) after EXIF transpose


def has_image_extension(name: str) -> bool:
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float grayscale: scale to 8 bit instead of clipping to white.
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        img = Image.fromarray((arr * (255.0 / top)).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def load_pixels(data: bytes, size: int) -> DecodedImage:
    """Decode image bytes into a (size, size, 3) uint8 array, or raise ImageError."""
    if not data:
        raise ImageError("empty_file", "the file has zero bytes")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit: treat both as a bomb.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if min(width, height) < MIN_SIDE:
                raise ImageError("too_small", f"{width}x{height} px, need at least {MIN_SIDE} px per side")
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
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not cost the photo
        pass
    original_size = img.size
    img = _to_rgb(img)
    if img.size != (size, size):
        img = img.resize((size, size), RESIZE_FILTER)
    return DecodedImage(np.asarray(img, dtype=np.uint8), original_size)

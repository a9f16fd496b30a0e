"""Bounded decoding: chalicelib.contract.imaging.load_pixels against the function it
replaced (copied below from git history), on hostile and ordinary images.

  1. peak extra memory (the process's peak RSS during the call, above its RSS before it) and
     wall time of one call, each (image, function) in a fresh process;
  2. the pixels: max / mean absolute difference between the two functions' output on every
     shared photo, at 224 and 32 px, as stored (JPEG) and re-encoded as PNG; and on 100 of them
     upscaled 4x to over 2 MP (2000 x 1332 and the like: the reduced path), as PNG.

Goal: under 200 MB of peak extra memory and under 0.5 s for the 9000 x 9000 16-bit PNG and
the 48-megapixel phone JPEG, on the 2-core development machine.

    python bench/imaging.py                    # writes bench/results/imaging.json
    python bench/imaging.py --no-pixels        # memory and time only
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "datasets" / "flower_photos"
sys.path[:0] = [str(ROOT)]

from chalicelib.contract.imaging import FULL_SIZE_PIXELS, DecodedImage, ImageError, load_pixels  # noqa: E402

MB = 1024 * 1024


# --- the function before bounded decoding (chalicelib/contract/imaging.py at 03927d0), verbatim -----
def _old_to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        img = Image.fromarray((arr * (255.0 / top)).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def old_load_pixels(data: bytes, size: int) -> DecodedImage:
    if not data:
        raise ImageError("empty_file", "the file has zero bytes")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if min(width, height) < 32:
                raise ImageError("too_small", f"{width}x{height} px")
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
    except Exception:
        pass
    original_size = img.size
    img = _old_to_rgb(img)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return DecodedImage(np.asarray(img, dtype=np.uint8), original_size)


FUNCTIONS = {"old": old_load_pixels, "new": load_pixels}


# --- the images ----------------------------------------------------------------------------
def sixteen_bit_png(width: int, height: int) -> bytes:
    """A 16-bit grayscale PNG (a gentle ramp), written row by row: a few MB of memory, ~150 KB on disk."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ramp = np.linspace(1000, 60000, width).astype(">u2").tobytes()
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(b"\x00" + ramp) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def ordinary_photo() -> Path:
    """The first 500-px-wide rose: the data set's usual size (500 x 333 and 320 x 240 are the commonest)."""
    return next(p for p in sorted((PHOTOS / "roses").glob("*.jpg")) if Image.open(p).size[0] == 500)


def phone_jpeg(**options) -> bytes:
    """8000 x 6000 (48 MP) from a real photo upscaled, quality 90, EXIF 'rotate 90' as phones write it."""
    photo = max((p for p in sorted((PHOTOS / "tulips").glob("*.jpg"))[:50]), key=lambda p: Image.open(p).size[0] * Image.open(p).size[1])
    big = Image.open(photo).convert("RGB").resize((8000, 6000), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    big.save(out, "JPEG", quality=90, exif=exif, **options)
    return out.getvalue()


def rgba_png(side: int) -> bytes:
    """side x side RGBA: a photo at 1/16 blown up (nearest), an alpha ramp; 4 bytes a pixel decoded, the most under the cap."""
    small = Image.open(ordinary_photo()).convert("RGB").resize((side // 16, side // 16))
    small.putalpha(Image.linear_gradient("L").resize(small.size))
    out = io.BytesIO()
    small.resize((side, side), Image.Resampling.NEAREST).save(out, "PNG", compress_level=9)
    return out.getvalue()


# --- 1. memory and time, one fresh process per (image, function) ---------------------------
def _hwm_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM) to the current RSS


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(function: str, path: str, size: int, repeats: int) -> dict:
    data = Path(path).read_bytes()
    load = FUNCTIONS[function]
    times, peaks, outcome = [], [], ""
    for _ in range(repeats):
        _hwm_reset()
        before = _status_kb("VmRSS")
        started = time.perf_counter()
        try:
            outcome = f"decoded, {load(data, size).original_size}"
        except ImageError as exc:
            outcome = exc.reason
        times.append(time.perf_counter() - started)
        peaks.append((_status_kb("VmHWM") - before) / 1024)
    return {"outcome": outcome, "seconds": statistics.median(times), "seconds_all": times,
            "peak_extra_mb": max(peaks), "bytes": len(data)}


def measure(cases: dict[str, Path], size: int, repeats: int) -> list[dict]:
    rows = []
    for name, path in cases.items():
        for function in ("old", "new"):
            runs = 1 if function == "old" and "9000" in name else repeats  # the old path takes seconds there
            out = subprocess.run([sys.executable, __file__, "--child", function, str(path), str(size), str(runs)],
                                 capture_output=True, text=True, check=True)
            row = {"image": name, "function": function, "size": size, **json.loads(out.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(f"{name:46s} {function}  {row['outcome']:16s} {row['peak_extra_mb']:7.0f} MB  {row['seconds']:6.3f} s", flush=True)
    return rows


# --- 2. pixels -----------------------------------------------------------------------------
def _as_png(data: bytes, scale: int = 1) -> bytes:
    img = Image.open(io.BytesIO(data))
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


def pixel_differences(sizes: tuple[int, ...], limit: int | None, large_limit: int) -> list[dict]:
    photos = sorted(p for p in PHOTOS.rglob("*.jpg"))[:limit]
    big_enough = [p for p in photos if Image.open(p).width * Image.open(p).height * 16 > FULL_SIZE_PIXELS]  # 4x: reduced
    encodings = {"as stored (JPEG)": (photos, lambda data: data),
                 "re-encoded as PNG": (photos, _as_png),
                 "upscaled 4x (bicubic), PNG": (big_enough[::max(1, len(big_enough) // large_limit)][:large_limit],
                                               lambda data: _as_png(data, 4))}
    rows = []
    for encoding, (chosen, prepare) in encodings.items():
        for size in sizes:
            worst, total, count, differ = 0, 0.0, 0, 0
            for photo in chosen:
                data = prepare(photo.read_bytes())
                diff = np.abs(old_load_pixels(data, size).pixels.astype(np.int16) - load_pixels(data, size).pixels.astype(np.int16))
                worst, total, count, differ = max(worst, int(diff.max())), total + float(diff.mean()), count + 1, differ + bool(diff.any())
            row = {"photos": encoding, "size": size, "count": count, "max_abs": worst, "mean_abs": total / count, "photos_differing": differ}
            rows.append(row)
            print(f"pixels {encoding:28s} {size:3d} px: {count} photos, max |old-new| {worst}, mean {total / count:.4f}, "
                  f"{differ} differ", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=4, metavar=("FUNCTION", "PATH", "SIZE", "REPEATS"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-pixels", action="store_true")
    parser.add_argument("--photos", type=int, default=None, help="compare pixels on the first N photos only")
    parser.add_argument("--large-photos", type=int, default=100, help="photos upscaled 4x for the reduced path's comparison")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "imaging.json")
    args = parser.parse_args()
    if args.child:
        function, path, size, repeats = args.child
        print(json.dumps(child(function, path, int(size), int(repeats))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        ordinary = ordinary_photo()
        width, height = Image.open(ordinary).size
        cases = {
            f"ordinary photo (shared JPEG, {width} x {height})": ordinary,
            "9000 x 9000 16-bit PNG (81 MP)": Path(tmp, "9000-16bit.png"),
            "48 MP phone JPEG (8000 x 6000, q90)": Path(tmp, "phone.jpg"),
            "7000 x 7000 16-bit PNG (49 MP, under the cap)": Path(tmp, "7000-16bit.png"),
            "7000 x 7000 RGBA PNG (49 MP, under the cap)": Path(tmp, "7000-rgba.png"),
            "48 MP progressive JPEG (4:4:4, q90)": Path(tmp, "phone-progressive.jpg"),
        }
        cases["48 MP progressive JPEG (4:4:4, q90)"].write_bytes(phone_jpeg(progressive=True, subsampling=0))
        cases["9000 x 9000 16-bit PNG (81 MP)"].write_bytes(sixteen_bit_png(9000, 9000))
        cases["48 MP phone JPEG (8000 x 6000, q90)"].write_bytes(phone_jpeg())
        cases["7000 x 7000 16-bit PNG (49 MP, under the cap)"].write_bytes(sixteen_bit_png(7000, 7000))
        cases["7000 x 7000 RGBA PNG (49 MP, under the cap)"].write_bytes(rgba_png(7000))
        for name, path in cases.items():
            print(f"{name}: {path.stat().st_size / 1024:.0f} KB", flush=True)
        results: dict = {"size": args.size, "pillow": PIL.__version__, "numpy": np.__version__, "files_kb": {n: round(p.stat().st_size / 1024) for n, p in cases.items()},
                         "memory_time": measure(cases, args.size, args.repeats)}
        if not args.no_pixels:
            big = {"48 MP phone JPEG": cases["48 MP phone JPEG (8000 x 6000, q90)"].read_bytes(),
                   "7000 x 7000 16-bit PNG": cases["7000 x 7000 16-bit PNG (49 MP, under the cap)"].read_bytes()}
            results["pixels_large"] = []
            for name, data in big.items():
                for size in (224, 32):
                    diff = np.abs(old_load_pixels(data, size).pixels.astype(np.int16) - load_pixels(data, size).pixels.astype(np.int16))
                    results["pixels_large"].append({"image": name, "size": size, "max_abs": int(diff.max()), "mean_abs": float(diff.mean())})
                    print(f"pixels {name} {size} px: max |old-new| {int(diff.max())}, mean {float(diff.mean()):.4f}", flush=True)
    if not args.no_pixels:
        results["pixels"] = pixel_differences((224, 32), args.photos, args.large_photos)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()

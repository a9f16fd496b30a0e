"""`flowers push SRC`: copy a data set into the local bucket folder or the cloud dataset bucket.

Either layout: one folder per class, or ModelArts' name.jpg + name.txt. Every photo is
decoded on the way (the same decoder training uses) and a file that cannot be a training
photo is reported with its reason, and copied all the same, as `aws s3 sync` would: the
bucket holds what was uploaded, and the training job's validation report (GET /status,
`flowers status`, the web page) lists every file it skipped and why, whoever uploaded it.
Unchanged files are not copied again.
Local copies land whole (a hidden temporary name, then a rename), so the watcher never
sees half a photo; a label file goes before its photo.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.pipeline.dataset_version import is_relevant
from chalicelib.contract.imaging import ImageError, has_image_extension, load_pixels
from flowers_cli.progress import Progress

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".bmp": "image/bmp",
                 ".txt": "text/plain"}


@dataclass
class PushReport:
    copied: int = 0
    unchanged: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason): copied, training will skip them
    bytes: int = 0


def files_of(source: Path) -> list[str]:
    """Relative paths of the data files under source, labels (.txt) before photos."""
    found = []
    for folder, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            relative = (Path(folder) / name).relative_to(source).as_posix()
            if is_relevant(relative, ""):
                found.append(relative)
    return sorted(found, key=lambda r: (has_image_extension(r), r))


def check(data: bytes, relative: str) -> str:
    """'' when the file is usable, else why not (the reasons training's validation.json uses)."""
    if not has_image_extension(relative):
        return "" if data.strip() else "empty_label: the label file is empty"
    try:
        load_pixels(data, 32)
    except ImageError as exc:
        return f"{exc.reason}: {exc.detail}"
    return ""


def push(source: Path, destination: "Destination", show_progress: bool = True) -> PushReport:
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder of photos")
    names = files_of(source)
    report = PushReport()
    bar = Progress(len(names), f"push to {destination}") if show_progress else None
    for relative in names:
        data = (source / relative).read_bytes()
        problem = check(data, relative)
        if problem:
            report.bad.append((relative, problem))
        if destination.put(relative, data):
            report.copied += 1
            report.bytes += len(data)
        else:
            report.unchanged += 1
        if bar:
            bar.update(1, f"copied {report.copied}, unchanged {report.unchanged}, bad {len(report.bad)}")
    if bar:
        bar.close()
    return report


class Destination:
    def put(self, relative: str, data: bytes) -> bool:
        """Store the file; False when an identical one is there already."""
        raise NotImplementedError


class FolderDestination(Destination):
    def __init__(self, root: Path, prefix: str = ""):
        self.root = Path(root) / prefix.strip("/") if prefix.strip("/") else Path(root)

    def __str__(self) -> str:
        return str(self.root)

    def put(self, relative: str, data: bytes) -> bool:
        target = self.root / relative
        if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part-{os.getpid()}")
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)  # a new inode: running jobs' hard-linked snapshots are untouched
        return True


class S3Destination(Destination):
    def __init__(self, url: str, client: S3Client | None = None):
        if not url.startswith("s3://"):
            raise ValueError(f"--bucket takes s3://BUCKET/PREFIX/, got {url!r}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"--bucket takes s3://BUCKET/PREFIX/, got {url!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.s3 = client

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def put(self, relative: str, data: bytes) -> bool:
        key = self.prefix + relative
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
            if head.get("ETag", "").strip('"') == md5:
                return False
        except Exception as exc:  # botocore ClientError 404: not there yet
            if "404" not in str(exc) and "Not Found" not in str(exc):
                raise
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data,
                           ContentType=CONTENT_TYPES.get(Path(relative).suffix.lower(), "application/octet-stream"))
        return True

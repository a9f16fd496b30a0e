"""`flowers classify DIR`: every photo of a folder classified, from a terminal, with a progress bar.

- through the API (the `flowers up` running on the home, else in this process; `--url` / `--stack` for the
  cloud): one JSON line per photo, as batch classification writes them (chalicelib/pipeline/batch_classify.py):
  key (the path under DIR), label (null: not recognised), predictions (top-k), model_version, and error
  when it could not be classified; to stdout or `--out FILE`;
- `--bucket s3://BUCKET/classify/...`: the photos are uploaded under the bucket's classify/ prefix and the
  deployed pipeline classifies them there, in batches, into s3://BUCKET/predictions/*.jsonl; with `--wait
  SECONDS` the command then reads those files until every photo has its line, and prints the lines.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from chalicelib.contract.bucket_layout import CLASSIFY_PREFIX, PREDICTIONS_PREFIX
from chalicelib.contract.imaging import has_image_extension
from flowers_cli.client import Api
from flowers_cli.progress import Progress
from flowers_cli.push import CONTENT_TYPES


def photos_in(folder: Path) -> list[Path]:
    """The photos under `folder` (any depth; dot-files and dot-folders left out), in a stable order."""
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.is_file() and has_image_extension(p.name)
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _key(photo: Path, root: Path) -> str:
    return photo.name if root.is_file() else photo.relative_to(root).as_posix()


def with_api(api: Api, root: Path, top_k: int, out: TextIO, show_progress: bool = True) -> tuple[int, int]:
    """POST /predict for each photo; one JSON line each. Returns (photos, errors)."""
    photos = photos_in(root)
    bar = Progress(len(photos), f"classify {root}") if show_progress else None
    errors = 0
    for photo in photos:
        line: dict[str, Any] = {"key": _key(photo, root)}
        try:
            data = photo.read_bytes()
        except OSError as exc:
            line.update(label=None, predictions=[], model_version=None, error=f"unreadable: {exc}")
        else:
            answer = api.post(f"predict?top_k={top_k}", data, CONTENT_TYPES.get(photo.suffix.lower(), "application/octet-stream"))
            document = answer.json()
            if answer.status == 200 and isinstance(document, dict):
                line.update(label=document.get("label"), predictions=document.get("predictions", []),
                            model_version=(document.get("model") or {}).get("version"))
            else:
                line.update(label=None, predictions=[], model_version=None, error=answer.error)
        errors += "error" in line
        out.write(json.dumps(line, sort_keys=True) + "\n")
        out.flush()
        if bar:
            bar.update(1, f"{errors} error(s)" if errors else "")
    if bar:
        bar.close()
    return len(photos), errors


@dataclass
class Uploaded:
    bucket: str
    sent: int  # the rest were there already, unchanged
    photos: dict[str, str]  # key -> ETag (the MD5 of a single-part upload), every photo of the folder

    @property
    def predictions(self) -> str:
        return f"s3://{self.bucket}/{PREDICTIONS_PREFIX}"


def to_bucket(url: str, root: Path, show_progress: bool = True, client: Any = None) -> Uploaded:
    """Upload the photos under s3://BUCKET/classify/... (those there already, unchanged, are not sent again)."""
    from flowers_cli.push import S3Destination

    destination = S3Destination(url, client)
    if not destination.prefix.startswith(CLASSIFY_PREFIX):
        raise ValueError(f"photos to classify go under s3://{destination.bucket}/{CLASSIFY_PREFIX}, not {url}")
    photos = photos_in(root)
    bar = Progress(len(photos), f"upload to {destination}") if show_progress else None
    uploaded = Uploaded(destination.bucket, 0, {})
    for photo in photos:
        data = photo.read_bytes()
        relative = _key(photo, root)
        uploaded.sent += destination.put(relative, data)
        uploaded.photos[destination.prefix + relative] = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return uploaded


def wait_for_lines(uploaded: Uploaded, timeout: float, out: TextIO, client: Any = None, poll: float = 5,
                   show_progress: bool = True) -> int:
    """Read s3://BUCKET/predictions/*.jsonl until every uploaded photo has its line (or `timeout` seconds pass);
    write each line once. Returns how many photos have none."""
    if client is None:
        import boto3

        client = boto3.client("s3")
    wanted = dict(uploaded.photos)
    read: set[str] = set()
    bar = Progress(len(wanted), "waiting for predictions") if show_progress else None
    deadline = time.monotonic() + timeout
    while wanted:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=uploaded.bucket, Prefix=PREDICTIONS_PREFIX):
            for item in page.get("Contents", []):
                if item["Key"] in read or not item["Key"].endswith(".jsonl"):
                    continue
                read.add(item["Key"])
                body = client.get_object(Bucket=uploaded.bucket, Key=item["Key"])["Body"].read().decode()
                for text in body.splitlines():
                    try:
                        line = json.loads(text)
                    except ValueError:
                        continue
                    if isinstance(line, dict) and wanted.get(str(line.get("key"))) == str(line.get("etag", "")).strip('"'):
                        del wanted[line["key"]]
                        out.write(json.dumps(line, sort_keys=True) + "\n")
                        if bar:
                            bar.update(1)
        out.flush()
        if not wanted or time.monotonic() + poll > deadline:
            break
        time.sleep(poll)
    if bar:
        bar.close()
    return len(wanted)


def main(api: Api | None, root: Path, bucket: str, top_k: int, out_path: str, quiet: bool, wait: float = 0) -> int:
    if not root.exists():
        print(f"error: {root} does not exist", file=sys.stderr)
        return 2
    if bucket:
        try:
            uploaded = to_bucket(bucket, root, show_progress=not quiet)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{uploaded.sent} photo(s) uploaded (the rest were there already); the pipeline writes their predictions to "
              f"{uploaded.predictions}*.jsonl", file=sys.stderr)
        if not wait:
            return 0
        out = open(out_path, "w") if out_path else sys.stdout
        try:
            missing = wait_for_lines(uploaded, wait, out, show_progress=not quiet)
        finally:
            if out_path:
                out.close()
        if missing:
            print(f"error: {missing} photo(s) without a prediction after {wait:.0f} s", file=sys.stderr)
            return 1
        return 0
    assert api is not None
    out = open(out_path, "w") if out_path else sys.stdout
    try:
        count, errors = with_api(api, root, top_k, out, show_progress=not quiet)
    finally:
        if out_path:
            out.close()
    print(f"{count} photo(s) classified by {api.where}, {errors} error(s)" + (f"; lines in {out_path}" if out_path else ""),
          file=sys.stderr)
    return 1 if errors else 0

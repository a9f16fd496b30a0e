"""ObjectStore on folders: s3://<bucket>/<key> names FLOWERS_HOME/<folder>/<key>.

The Orchestrator builds s3:// URIs from the settings' bucket names; local mode maps each bucket
name onto a folder ("bucket" -> HOME/bucket/, "artifacts" -> HOME/artifacts/). ETags are
MD5s of the content, as S3's are for single-part uploads, cached by (size, mtime, inode)
so a scan of thousands of photos hashes only what changed.
"""
from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

from chalicelib.contract.bucket_layout import MODELS_PREFIX
from chalicelib.pipeline.dataset_version import is_relevant
from chalicelib.pipeline.records import ObjectInfo


class LocalObjectStore:
    def __init__(self, buckets: dict[str, Path], base_url: str = "", public_bucket: str = "",
                 public_prefix: str = MODELS_PREFIX):
        self._buckets = {name: Path(folder) for name, folder in buckets.items()}
        self._base_url = base_url.rstrip("/")
        self._public = (public_bucket, public_prefix)
        self._etags: dict[str, tuple[tuple[int, int, int], str]] = {}
        self._lock = threading.Lock()

    def serve_downloads_from(self, base_url: str) -> None:
        """Where download links point: known once `flowers up` has its port (0 picks a free one)."""
        self._base_url = base_url.rstrip("/")

    # URIs -----------------------------------------------------------------------------------
    def path(self, uri: str) -> Path:
        """The file or folder a URI names (a folder keeps its trailing slash meaning)."""
        if uri.startswith("file://"):
            return Path(uri[len("file://"):])
        if not uri.startswith("s3://"):
            return Path(uri)
        bucket, _, key = uri[len("s3://"):].partition("/")
        if bucket not in self._buckets:
            raise FileNotFoundError(f"no local folder for bucket {bucket!r} ({uri})")
        root = self._buckets[bucket]
        target = (root / key).resolve() if key else root.resolve()
        if target != root.resolve() and root.resolve() not in target.parents:
            raise FileNotFoundError(f"{uri} points outside its bucket folder")
        return target

    def join(self, uri: str, *parts: str) -> str:
        return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])

    # reads ----------------------------------------------------------------------------------
    def list(self, uri: str) -> Iterator[ObjectInfo]:
        root = self.path(uri)
        if not root.is_dir():
            return
        for relative, stat in scan(root):
            yield ObjectInfo(relative, self.etag(root / relative, stat), stat.st_size)

    def read(self, uri: str) -> bytes:
        return self.path(uri).read_bytes()

    def read_start(self, uri: str, size: int) -> bytes:
        with self.path(uri).open("rb") as file:
            return file.read(size)

    def write(self, uri: str, data: bytes) -> None:
        """Whole or not at all: written beside the target under a dot-name (never data), then renamed."""
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            partial.write_bytes(data)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def write_once(self, uri: str, data: bytes, lock_days: int = 0) -> bool:
        """Written beside the target, then hard-linked to its name: link() fails when the name exists, so of two
        writers one wins and neither replaces the other. No locks here (`lock_days` is the cloud's)."""
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            partial.write_bytes(data)
            try:
                os.link(partial, target)
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links (some network ones): an exclusive create instead
                with open(target, "xb") as handle:
                    handle.write(data)
        except FileExistsError:
            return False
        finally:
            partial.unlink(missing_ok=True)
        return True

    def lock(self, uri: str, days: int) -> int:
        """Local mode keeps one version of each file and locks none (the folder is the user's own)."""
        return 0

    def restore_version(self, uri: str, version_id: str) -> None:
        raise OSError(errno.ENOTSUP, f"local mode keeps no earlier versions of a file (no version {version_id} of {uri})")

    def exists(self, uri: str) -> bool:
        try:
            return self.path(uri).is_file()
        except FileNotFoundError:
            return False

    def download_url(self, uri: str, seconds: int) -> str:
        """Served by `flowers up` at /files/<key> for the artifact bucket's models/ (no credentials locally)."""
        bucket, _, key = uri[len("s3://"):].partition("/") if uri.startswith("s3://") else ("", "", "")
        if bucket != self._public[0] or not key.startswith(self._public[1]):
            return self.path(uri).as_uri()
        return f"{self._base_url}/files/{quote(key)}"

    def etag(self, path: Path, stat: os.stat_result | None = None) -> str:
        stat = stat or path.stat()
        identity = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        key = str(path)
        with self._lock:
            cached = self._etags.get(key)
        if cached and cached[0] == identity:
            return cached[1]
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        value = digest.hexdigest()
        with self._lock:
            self._etags[key] = (identity, value)
        return value


def scan(root: Path, keep: Callable[[str], bool] | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """(key relative to root, stat) of every data file under root: photos and .txt labels, no dot-files
    (or the files whose key `keep` takes)."""
    keep = keep or (lambda relative: is_relevant(relative, ""))
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue  # dot-files: our own partial uploads (.name.part) and OS litter
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    continue
                if not entry.is_file():
                    continue
                relative = Path(entry.path).relative_to(root).as_posix()
                if keep(relative):
                    yield relative, entry.stat()
            except OSError:
                continue  # removed while we looked

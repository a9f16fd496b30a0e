"""Backbone features, kept per photo across runs (issue 21): a run computes features only for the photos it
has not seen with this backbone.

An entry's key is the sha256 of the backbone's identity and the photo's decoded pixels (as the run feeds
them: the photo's content at the run's input size). The identity is the preset, the input size and a
sha256 of every weight of the feature extractor *as it is when asked*, so ImageNet weights, a warm start's
weights and fine-tuned weights never share entries, and a stale entry cannot be found. Each entry holds a
sha256 of its own bytes: a corrupt or truncated one (a crash mid-write, a bad disk) fails the check and
is recomputed and written again, never trusted.

Where: FLOWERS_FEATURE_CACHE names the folder (locally HOME/artifacts/features/; in the cloud the job's
`features` input channel, s3://ARTIFACTS/features/ in FastFile mode: an entry is fetched when it is looked up,
so lookups run many at once). New entries are written there, or to FLOWERS_FEATURE_CACHE_NEW when set: both job
runners set it to the model folder's features/ (chalicelib/contract/feature_cache.py), so they leave the job in
its model.tar.gz, never through the network (the job runs network-isolated and calls no AWS API), and the
conversion job hands them on to the cache (`hand_on`, training/convert.py --features-out). Without the variable
nothing is cached, as before.

Two steps use it (training/train.py opens it around each; the log has a line for each): phase 1 reads and
writes the features of the backbone it starts from (ImageNet's: shared by every full run), and calibration
writes those of the final, fine-tuned backbone. The next run warm-started from this model starts from exactly
that backbone, so its phase 1 computes only the photos added since.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

import numpy as np

if TYPE_CHECKING:
    import keras

from chalicelib.contract.feature_cache import ENTRY_SUFFIX, FOLDER_ENV, MARKER, MARKER_TEXT, NEW_ENV, PREFIX

FORMAT = b"flowers-features-1\n"
_DIGEST = 32
READS_IN_FLIGHT = 16  # a FastFile channel fetches each entry from S3 when it is opened: many at once


@dataclass
class Stats:
    hits: int = 0
    computed: int = 0
    corrupt: int = 0  # entries that failed their checksum or shape: recomputed
    written: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "computed": self.computed, "corrupt": self.corrupt}


class FeatureCache:
    """Entries under `folder`; new ones written to `new_folder` when given (the cloud's channel is read-only)."""

    def __init__(self, folder: Path, preset: str, image_size: int, new_folder: Path | None = None):
        self.folder = Path(folder)
        self.new_folder = Path(new_folder) if new_folder else self.folder
        self.preset = preset
        self.image_size = image_size
        self.stats = Stats()

    def identity(self, extractor: keras.Model) -> str:
        digest = hashlib.sha256(f"{self.preset}|{self.image_size}|".encode())
        for weight in extractor.weights:
            value = np.ascontiguousarray(weight.numpy())
            digest.update(f"{weight.path}|{value.dtype}|{value.shape}|".encode())
            digest.update(value.tobytes())
        return digest.hexdigest()

    def features(self, extractor: keras.Model, images: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        if len(images) == 0:
            return compute(images)
        identity = self.identity(extractor)
        dim = int(extractor.output_shape[-1])
        keys = [hashlib.sha256(identity.encode() + np.ascontiguousarray(image).tobytes()).hexdigest() for image in images]
        with ThreadPoolExecutor(max_workers=READS_IN_FLIGHT) as pool:
            rows: list[np.ndarray | None] = list(pool.map(lambda key: self._load(key, dim), keys))
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            fresh = compute(images[missing])
            for index, row in zip(missing, fresh):
                rows[index] = row
                self._store(keys[index], row)
        self.stats.hits += len(images) - len(missing)
        self.stats.computed += len(missing)
        return np.stack([row for row in rows if row is not None]).astype(np.float32)

    def path(self, key: str, folder: Path | None = None) -> Path:
        return (folder or self.folder) / key[:2] / f"{key}{ENTRY_SUFFIX}"

    def _load(self, key: str, dim: int) -> np.ndarray | None:
        """The entry's row (this run's own new entries first); None when there is none or it fails its checks."""
        for folder in dict.fromkeys((self.new_folder, self.folder)):
            try:
                raw = self.path(key, folder).read_bytes()
            except OSError:
                continue
            body = raw[len(FORMAT) + _DIGEST:]
            if not valid(raw) or len(body) != dim * 4:
                with _counting:
                    self.stats.corrupt += 1
                return None
            return np.frombuffer(body, dtype="<f4").copy()
        return None

    def _store(self, key: str, row: np.ndarray) -> None:
        body = np.ascontiguousarray(row, dtype="<f4").tobytes()
        path = self.path(key, self.new_folder)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(FORMAT + hashlib.sha256(body).digest() + body)
            os.replace(partial, path)  # whole or not at all
            self.stats.written.append(path)
        except OSError as exc:  # a cache that cannot be written costs time, never the run
            print(f"feature cache: cannot write {path}: {exc}", flush=True)


_current: FeatureCache | None = None
_counting = threading.Lock()  # loads run in threads


def features(extractor: keras.Model, images: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The cached features when a cache is open (phase 1, calibration), else `compute(images)` as before."""
    return compute(images) if _current is None else _current.features(extractor, images, compute)


@contextmanager
def opened(preset: str, image_size: int, step: str = "", *,
           environ: dict[str, str] | None = None) -> Iterator[FeatureCache | None]:
    """The steps inside with the cache FLOWERS_FEATURE_CACHE names (none: no cache). `step` names them in the
    log line."""
    global _current
    env: Mapping[str, str] = os.environ if environ is None else environ
    folder = env.get(FOLDER_ENV, "")
    if not folder:
        yield None
        return
    cache = FeatureCache(Path(folder), preset, image_size, Path(env[NEW_ENV]) if env.get(NEW_ENV) else None)
    _current = cache
    try:
        yield cache
    finally:
        _current = None
        print(f"feature cache: {cache.stats.hits} photo(s) from {cache.folder}, {cache.stats.computed} computed"
              + (f", {cache.stats.corrupt} corrupt entr(ies) recomputed" if cache.stats.corrupt else "")
              + (f" ({step})" if step else ""), flush=True)


def valid(raw: bytes) -> bool:
    """An entry's own checks, without knowing its backbone's width: the format, a whole body and its checksum."""
    body = raw[len(FORMAT) + _DIGEST:]
    return (raw.startswith(FORMAT) and len(body) > 0 and len(body) % 4 == 0
            and hashlib.sha256(body).digest() == raw[len(FORMAT):len(FORMAT) + _DIGEST])


def hand_on(source: Path, target: Path) -> tuple[int, int]:
    """The conversion job's part: the entries a training job wrote into its model folder (`source`, NEW_FOLDER of
    the unpacked model) copied to `target`, the conversion's output that becomes the cache (s3://ARTIFACTS/features/;
    locally HOME/artifacts/features/), with the marker that makes the next job's channel. Only well-formed entries
    under their own <2 hex>/<64 hex>.f32 name are handed on, so nothing else reaches features/. Returns (handed on,
    refused)."""
    handed, refused = 0, 0
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.glob("*/*")) if source.is_dir() else ():
        relative = entry.relative_to(source)
        try:
            raw = entry.read_bytes()
        except OSError:  # a folder or an unreadable file: not an entry
            refused += 1
            continue
        if not (_ENTRY_NAME.fullmatch(relative.as_posix()) and relative.parts[1].startswith(relative.parts[0])
                and valid(raw)):
            refused += 1
            continue
        (target / relative.parts[0]).mkdir(exist_ok=True)
        (target / relative).write_bytes(raw)
        handed += 1
    # Always written, even with no new entry: the output is never empty, and the channel exists from now on.
    (target / MARKER[len(PREFIX):]).write_bytes(MARKER_TEXT)
    return handed, refused


_ENTRY_NAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}" + re.escape(ENTRY_SUFFIX))

"""Find, validate, split and decode a labelled photo data set.

Two layouts, both from the reference platform, under any depth of prefix:
- "image classification": `name.jpg` next to `name.txt` holding the label;
- one folder per class: `daisy/name.jpg` (the class is the image's parent folder).
A data set where any image has a same-name `.txt` is read in the first layout.

Validation never stops at one file: every unusable file is skipped with a reason.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chalicelib.contract.imaging import ImageError, has_image_extension, load_pixels

SPLITS = ("train", "validation", "test")


class DatasetError(ValueError):
    """The data set as a whole cannot be trained on (too few classes or images)."""

    def __init__(self, message: str, dataset: "Dataset | None" = None):
        super().__init__(message)
        self.dataset = dataset  # what was found, so the validation report is still written


@dataclass(frozen=True)
class Example:
    path: str  # relative to the data set root, with forward slashes
    label: str
    sha256: str


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str
    detail: str

    def as_dict(self) -> dict:
        return {"path": self.path, "reason": self.reason, "detail": self.detail}


@dataclass
class Scan:
    """What is in a data set folder, before any image is decoded."""

    root: Path
    layout: str  # "image_classification" | "folder_per_class"
    examples: list[Example]
    skipped: list[Skipped]
    ignored: list[str]
    version: str  # hash of every file's relative path and content hash


@dataclass
class SplitArrays:
    images: np.ndarray  # (n, size, size, 3) uint8
    labels: np.ndarray  # (n,) int32 class indices
    paths: list[str]


@dataclass
class Dataset:
    labels: list[str]
    splits: dict[str, SplitArrays]
    scan: Scan
    skipped: list[Skipped] = field(default_factory=list)  # scan + decode problems

    def report(self) -> dict:
        counts = {
            label: {name: int(np.sum(self.splits[name].labels == index)) for name in SPLITS}
            for index, label in enumerate(self.labels)
        }
        for per_split in counts.values():
            per_split["total"] = sum(per_split.values())
        return {
            "dataset_version": self.scan.version,
            "layout": self.scan.layout,
            "usable_images": sum(len(s.paths) for s in self.splits.values()),
            "classes": counts,
            "skipped": [s.as_dict() for s in self.skipped],
            "skipped_by_reason": dict(Counter(s.reason for s in self.skipped)),
            "ignored_files": self.scan.ignored,
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_label(path: Path) -> tuple[list[str], str]:
    """Labels in a ModelArts `.txt`: one per line (or comma separated); BOM, CRLF and blanks tolerated."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "label file is not UTF-8 text"
    labels = [part.strip() for line in text.splitlines() for part in line.split(",")]
    return [label for label in labels if label], ""


def split_of(sha256: str, fractions: tuple[float, float, float]) -> str:
    """Split chosen by content hash: a photo keeps its split however the data set grows."""
    position = int(sha256[:15], 16) / float(16**15)
    train, validation, _ = fractions
    if position < train:
        return "train"
    if position < train + validation:
        return "validation"
    return "test"


def scan(root: str | os.PathLike) -> Scan:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data set folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if has_image_extension(p.name)]
    by_stem = {p.with_suffix(""): p for p in images}
    label_files = {p.with_suffix(""): p for p in files if p.suffix.lower() == ".txt" and p.with_suffix("") in by_stem}
    layout = "image_classification" if label_files else "folder_per_class"
    used = set(images) | set(label_files.values())
    ignored = [p.relative_to(root).as_posix() for p in files if p not in used]

    skipped: list[Skipped] = []
    candidates: list[Example] = []
    version = hashlib.sha256()
    for path in files:
        if path in used:
            version.update(f"{path.relative_to(root).as_posix()}\t{_sha256(path)}\n".encode())
    for image in images:
        rel = image.relative_to(root).as_posix()
        if image.stat().st_size == 0:
            skipped.append(Skipped(rel, "empty_file", "the file has zero bytes"))
            continue
        if layout == "image_classification":
            label_file = label_files.get(image.with_suffix(""))
            if label_file is None:
                skipped.append(Skipped(rel, "no_label", f"no {image.stem}.txt label file beside it"))
                continue
            labels, problem = read_label(label_file)
            if problem:
                skipped.append(Skipped(rel, "bad_label", problem))
                continue
            if not labels:
                skipped.append(Skipped(rel, "empty_label", f"{label_file.name} holds no label"))
                continue
            if len(set(labels)) > 1:
                skipped.append(Skipped(rel, "multi_label", f"{label_file.name} holds {sorted(set(labels))}; this product is single-label"))
                continue
            label = labels[0]
        else:
            if image.parent == root:
                skipped.append(Skipped(rel, "no_label", "not inside a class folder and no .txt label beside it"))
                continue
            label = image.parent.name.strip()
        candidates.append(Example(rel, label, _sha256(image)))

    examples = _drop_conflicts(candidates, skipped)
    return Scan(root, layout, examples, skipped, ignored, version.hexdigest()[:16])


def _drop_conflicts(candidates: list[Example], skipped: list[Skipped]) -> list[Example]:
    """Same bytes under two labels: skip every copy. Same bytes, same label: keep the first."""
    by_hash: dict[str, list[Example]] = defaultdict(list)
    for example in candidates:
        by_hash[example.sha256].append(example)
    kept = []
    for copies in by_hash.values():
        labels = sorted({c.label for c in copies})
        if len(labels) > 1:
            others = ", ".join(c.path for c in copies)
            skipped.extend(Skipped(c.path, "conflicting_labels", f"same content under labels {labels}: {others}") for c in copies)
            continue
        kept.append(copies[0])
        skipped.extend(Skipped(c.path, "duplicate", f"same content as {copies[0].path}") for c in copies[1:])
    return sorted(kept, key=lambda e: e.path)


def decode(root: Path, examples: list[Example], size: int,
           workers: int | None = None) -> tuple[list[Example], list[np.ndarray], list[Skipped]]:
    """Decode examples in parallel (Pillow releases the GIL). Returns (kept, pixels, skipped)."""

    def one(example: Example) -> np.ndarray | ImageError:
        try:
            return load_pixels((root / example.path).read_bytes(), size).pixels
        except ImageError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 1) * 2)) as pool:
        results = list(pool.map(one, examples))
    kept, pixels, skipped = [], [], []
    for example, result in zip(examples, results):
        if isinstance(result, ImageError):
            skipped.append(Skipped(example.path, result.reason, result.detail))
        else:
            kept.append(example)
            pixels.append(result)
    return kept, pixels, skipped


def _arrays(examples: list[Example], pixels: list[np.ndarray], labels: list[str], size: int) -> SplitArrays:
    index = {label: i for i, label in enumerate(labels)}
    images = np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.uint8)
    return SplitArrays(images, np.array([index[e.label] for e in examples], np.int32), [e.path for e in examples])


def load(
    root: str | os.PathLike,
    image_size: int,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    min_images_per_class: int = 5,
    only_splits: tuple[str, ...] = SPLITS,
    labels: list[str] | None = None,
) -> Dataset:
    """Scan, split and decode a data set.

    `labels` fixes the class list (conversion reuses the model's); `only_splits` decodes
    just those splits. Raises DatasetError (with what was found) when there is too little.
    """
    found = scan(root)
    skipped = list(found.skipped)
    examples = found.examples
    if labels is not None:
        known = set(labels)
        skipped += [Skipped(e.path, "unknown_label", f"label {e.label!r} is not one of the model's classes") for e in examples if e.label not in known]
        examples = [e for e in examples if e.label in known]
    examples = [e for e in examples if split_of(e.sha256, fractions) in only_splits]
    kept, pixels, bad = decode(found.root, examples, image_size)
    skipped += bad
    counts = Counter(e.label for e in kept)
    labels = sorted(counts) if labels is None else labels
    grouped: dict[str, tuple[list, list]] = {name: ([], []) for name in SPLITS}
    for example, pix in zip(kept, pixels):
        grouped[split_of(example.sha256, fractions)][0].append(example)
        grouped[split_of(example.sha256, fractions)][1].append(pix)
    splits = {name: _arrays(*grouped[name], labels, image_size) for name in SPLITS}
    dataset = Dataset(labels, splits, found, sorted(skipped, key=lambda s: s.path))
    if min_images_per_class:
        problem = _enough_problem(counts, min_images_per_class)
        if problem:
            raise DatasetError(problem, dataset)
    return dataset


def _enough_problem(counts: Counter, minimum: int) -> str:
    if len(counts) < 2:
        return f"need at least 2 classes with usable images, found {len(counts)}: {sorted(counts)}"
    short = {label: n for label, n in sorted(counts.items()) if n < minimum}
    if short:
        listed = ", ".join(f"{label} ({n})" for label, n in short.items())
        return f"every class needs at least {minimum} usable images (min_images_per_class); too few: {listed}"
    return ""


def write_report(dataset_or_report, path: str | os.PathLike) -> None:
    report = dataset_or_report.report() if isinstance(dataset_or_report, Dataset) else dataset_or_report
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2) + "\n")

"""Approval that a relabel cannot game: before a model is approved automatically, its data set's labels are
compared with those of the model in production. Pure, but for `read_comparison` at the end (which reads the
two manifests and production's metadata.json through the ObjectStore port).

The promotion gate (promotion.py) scores the production model on the *new* run's test photos: relabel them
and production looks worse, and a model trained on the new labels wins; change the class set and there is
no like-for-like score at all. So the gate's approval stands only when
- the class set (the two models' labels) is the same, and
- at most `max_relabel_share` of the photos both data sets hold (matched by content: ETag and size, never
  by key alone, so a photo *moved* to another class folder is the same photo relabelled) changed label;
otherwise the model is registered `pending` with a reason saying what changed, and a person decides.

A photo's label is read from the manifest's keys and ETags the way training reads the data set
(training/dataset.py): with any `name.txt` beside an image, each image's label is its `.txt` (compared by
that file's ETag: its text is not in the manifest); otherwise its class folder (the image's parent folder).
The same content under several keys carries the set of their labels (training skips a photo whose copies
disagree, so a copy into a second class folder is a change too).
"""
from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from chalicelib.contract import bucket_layout as layout
from chalicelib.contract.imaging import has_image_extension
from chalicelib.pipeline import manifest, preparation
from chalicelib.pipeline.promotion import GateResult, as_mapping
from chalicelib.pipeline.records import ModelEntry
from chalicelib.ports import ObjectStore

EXAMPLES = 3  # relabelled photos a reason names


@dataclass(frozen=True, order=True)
class Label:
    """A photo's label as the manifest tells it: a class folder's name, or the ETag of its .txt label file."""

    kind: str  # "folder" | "file"
    value: str
    shown: str = field(compare=False)  # in a reason: "roses", "label file a.txt"


Content = tuple[str, int]  # (ETag, size): the same bytes, whatever the key


@dataclass(frozen=True)
class Relabelled:
    """One photo (one content) whose labels differ: where it was and is, and its labels then and now."""

    before_key: str
    after_key: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    def __str__(self) -> str:
        where = self.after_key if self.before_key == self.after_key else f"{self.before_key} -> {self.after_key}"
        return f"{where}: {'+'.join(self.before)} -> {'+'.join(self.after)}"[:300]  # keys may be long; reasons are capped


@dataclass(frozen=True)
class Comparison:
    """What changed in the labels since production, and whether that leaves the model to a person."""

    hold: bool
    reason: str  # held: why; else a short note the approval's reason carries ("" when nothing was compared)
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    shared: int = 0  # contents (photos) in both data sets, labelled in both
    relabelled: int = 0
    examples: tuple[Relabelled, ...] = ()


def _etag(entry: Mapping[str, Any]) -> str:
    return str(entry.get("etag", "")).strip('"')


def _size(entry: Mapping[str, Any]) -> int:
    size = entry.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) else -1


def labelled_photos(files: Iterable[Mapping[str, Any]]) -> dict[Content, dict[str, Label]]:
    """{content: {key: label}} for every image the manifest's files label, as training/dataset.py's scan would:
    the `.txt` layout when any image has a same-name `.txt` beside it, else class folders. Unlabelled images
    (no `.txt` in that layout, an image outside any folder in the other) are left out, as training skips them."""
    entries = [f for f in files if isinstance(f, Mapping) and isinstance(f.get("key"), str)]
    images = [f for f in entries if has_image_extension(posixpath.basename(f["key"]))]
    stems = {posixpath.splitext(f["key"])[0] for f in images}
    label_files = {posixpath.splitext(f["key"])[0]: f for f in entries
                   if posixpath.splitext(f["key"])[1].lower() == ".txt" and posixpath.splitext(f["key"])[0] in stems}
    found: dict[Content, dict[str, Label]] = {}
    for image in images:
        key = image["key"]
        if label_files:
            text = label_files.get(posixpath.splitext(key)[0])
            if text is None:
                continue
            label = Label("file", _etag(text), f"label file {posixpath.basename(text['key'])} ({_etag(text)[:8]})")
        else:
            folder = posixpath.basename(posixpath.dirname(key)).strip()
            if not folder:
                continue
            label = Label("folder", folder, folder)
        found.setdefault((_etag(image), _size(image)), {})[key] = label
    return found


def _shown(labels: Mapping[str, Label]) -> tuple[str, ...]:
    return tuple(label.shown for label in sorted(set(labels.values())))


def compare(before_files: Iterable[Mapping[str, Any]], after_files: Iterable[Mapping[str, Any]],
            before_classes: Iterable[str], after_classes: Iterable[str], max_share: float,
            production_version: str) -> Comparison:
    """Production's data set (`before_*`: its manifest's files, its model's labels) against the new run's."""
    before_set, after_set = {str(c) for c in before_classes}, {str(c) for c in after_classes}
    added, removed = tuple(sorted(after_set - before_set)), tuple(sorted(before_set - after_set))
    before, after = labelled_photos(before_files), labelled_photos(after_files)
    shared = sorted(before.keys() & after.keys())
    changed = [content for content in shared if set(before[content].values()) != set(after[content].values())]
    examples = tuple(sorted((Relabelled(min(before[c]), min(after[c]), _shown(before[c]), _shown(after[c])) for c in changed),
                            key=lambda r: (r.after_key, r.before_key))[:EXAMPLES])
    share = len(changed) / len(shared) if shared else 0.0
    counted = f"{len(changed)} of {len(shared)} photos in both data sets relabelled ({share:.1%})"
    problems = []
    if added or removed:
        problems.append("the classes changed (" + "; ".join(part for part in (
            f"added {', '.join(added)}" if added else "", f"removed {', '.join(removed)}" if removed else "") if part) + ")")
    if share > max_share + 1e-12:
        named = "; ".join(str(e) for e in examples) + ("; ..." if len(changed) > len(examples) else "")
        problems.append(f"{counted}, more than max_relabel_share {max_share:.0%}, e.g. {named}")
    if problems:
        reason = f"labels changed since production {production_version}: {'; '.join(problems)}: a person decides"
    else:
        reason = f"labels: {counted}, classes unchanged"
    return Comparison(bool(problems), reason, added, removed, len(shared), len(changed), examples)


def unknown(production_version: str, why: str) -> Comparison:
    """The labels could not be compared (a manifest unreadable): a person decides."""
    return Comparison(True, f"cannot compare the labels with production {production_version}'s: {why}: a person decides")


def gate(result: GateResult, comparison: Comparison) -> GateResult:
    """The promotion gate's result, held for a person when the labels changed too much; its reason either way."""
    if comparison.hold:
        return GateResult(False, f"{comparison.reason} (the gate: {result.reason})")
    return GateResult(result.approve, f"{result.reason}; {comparison.reason}" if comparison.reason else result.reason)


# Reading what is compared (the Orchestrator calls this when a model is registered) ---------------------------
def _labels(metadata: object) -> list[str]:
    labels = as_mapping(metadata).get("labels")
    return [str(label) for label in labels] if isinstance(labels, list) else []


def folder_classes(files: Iterable[Mapping[str, Any]]) -> list[str]:
    """The class folders of a manifest's labelled images; [] in the `.txt` layout (the labels are not in it)."""
    return sorted({label.value for labels in labelled_photos(files).values() for label in labels.values() if label.kind == "folder"})


def read_comparison(objects: ObjectStore, artifact_bucket: str, production: ModelEntry, candidate_manifest_uri: str,
                    candidate_metadata: Mapping[str, Any], max_share: float) -> Comparison:
    """Compare the new run's manifest and labels with the production model's. A production model trained before
    runs wrote manifests has only its classes compared; a store that cannot be read, or a manifest this code did
    not write, leaves the model to a person."""
    version = production.version
    try:
        production_metadata = json.loads(objects.read(production.metadata_uri)) if production.metadata_uri else {}
        before_uri = production.manifest_uri or layout.manifest_record(artifact_bucket, version)
        before = manifest.parse(objects.read(before_uri))["files"] if objects.exists(before_uri) else None
        after = manifest.parse(objects.read(candidate_manifest_uri))["files"]
    except Exception as exc:
        if not (isinstance(exc, ValueError) or preparation.is_environment_error(exc)):
            raise
        return unknown(version, preparation.describe(exc)[:500])
    # The models' labels; for a metadata.json without them, the manifest's class folders.
    before_classes = _labels(production_metadata) or folder_classes(before or [])
    after_classes = _labels(candidate_metadata) or folder_classes(after)
    if not before_classes or not after_classes:  # one side's classes are not known: not compared
        before_classes = after_classes = []
    if before is None:  # nothing to match photos against: the class sets alone
        found = compare([], [], before_classes, after_classes, max_share, version)
        return found if found.hold else replace(found, reason=f"labels not compared: production {version} has no manifest")
    return compare(before, after, before_classes, after_classes, max_share, version)

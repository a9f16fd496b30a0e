"""Batch classification by upload: photos put under `classify/` in the dataset bucket (locally
HOME/bucket/classify/) are classified by the served model, one batch per delivery of upload
notifications, and the answers written as JSON Lines to `predictions/<batch>.jsonl` in the same bucket.

Each line: {"key", "etag", "label" (null: not recognised, or not classified), "predictions" (top-k
label/score), "model_version", "error" (only when the photo could not be classified: unreadable,
gone, over MAX_IMAGE_BYTES, no approved model yet)}. A photo is read no further than one byte past
the limit, so one huge object costs its own line, not the batch (which SQS would retry into its dead-letter queue). The batch's name is a hash of its photos' keys and ETags, so a
redelivered batch finds its output and writes nothing (idempotent); a batch split differently on
redelivery writes another file, and lines name key and ETag so a reader can drop repeats. When the Lambda's
time runs short (deadline.py) no further photo is started: the batch's output holds the photos classified
(named after them), and the messages of the others go back to the queue for SQS to deliver again.
`classify/` and `predictions/` are never training data (chalicelib/dataset_version.is_relevant).

The handler (chalicelib/api/handlers.on_upload_messages) parses, calls `on_messages`, and answers SQS: a batch
that failed for a reason worth retrying (the store could not be read or written) goes back to the queue.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol
from urllib.parse import unquote_plus

from chalicelib.contract.bucket_layout import CLASSIFY_PREFIX, PREDICTIONS_PREFIX
from chalicelib.contract.imaging import MAX_IMAGE_BYTES, ImageError, has_image_extension
from chalicelib.contract.vocabulary import Action
from chalicelib.observability import logger
from chalicelib.pipeline.deadline import NONE as NO_DEADLINE, Deadline
from chalicelib.ports import ObjectStore

TOP_K = 5


@dataclass(frozen=True)
class Photo:
    key: str  # from the bucket's root: classify/...
    etag: str


@dataclass(frozen=True)
class BatchResult:
    """What became of one batch: the `classified` of the upload Lambda's answer (as_dict()). None: left out."""

    action: Action  # NONE | DONE_BEFORE | CLASSIFIED | FAILED | DEFERRED (the Lambda's time ran short before any photo)
    photos: int  # in the batch; CLASSIFIED: in its output
    output: str | None = None  # the batch's predictions file (DONE_BEFORE, CLASSIFIED)
    errors: int | None = None  # CLASSIFIED: the photos that could not be classified (their lines say why)
    deferred: int | None = None  # CLASSIFIED: the photos left for SQS's next delivery (the Lambda's time ran short)

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"action": self.action.value, "photos": self.photos}
        if self.output is not None:
            answer["output"] = self.output
        if self.errors is not None:
            answer["errors"] = self.errors
        if self.deferred:
            answer["deferred"] = self.deferred
        return answer


class Classifier(Protocol):
    """What the served model offers (chalicelib.serving.predictor.Predictor): None when no model is approved yet."""

    def predict(self, image: bytes, top_k: int) -> tuple[Any, list[dict[str, Any]]] | None: ...


def is_inbox_photo(key: str) -> bool:
    """A photo (by its extension) under classify/, not a dot-file."""
    return key.startswith(CLASSIFY_PREFIX) and has_image_extension(key.rsplit("/", 1)[-1]) and "/." not in "/" + key


def photos_in(bodies: Iterable[str], bucket: str) -> list[Photo]:
    """The photos created under classify/ in `bucket`, from S3 notification bodies (SQS message bodies, SNS-wrapped
    or not); anything else (other keys, removals, test events, malformed bodies) is not for this."""
    found: dict[tuple[str, str], Photo] = {}
    for body in bodies:
        try:
            document = json.loads(body)
            if isinstance(document, dict) and document.get("Type") == "Notification":
                document = json.loads(document["Message"])
            records = document.get("Records") if isinstance(document, dict) else None
        except (TypeError, ValueError, KeyError):
            continue
        for record in records if isinstance(records, list) else []:
            try:
                if not str(record["eventName"]).startswith("ObjectCreated:") or record["s3"]["bucket"]["name"] != bucket:
                    continue
                key = unquote_plus(str(record["s3"]["object"]["key"]))
                etag = str(record["s3"]["object"].get("eTag") or "")
            except (KeyError, TypeError):
                continue
            if is_inbox_photo(key):
                found[(key, etag)] = Photo(key, etag)
    return sorted(found.values(), key=lambda p: (p.key, p.etag))


def batch_name(photos: list[Photo]) -> str:
    digest = hashlib.sha256("".join(f"{p.key}\t{p.etag}\n" for p in sorted(photos, key=lambda p: (p.key, p.etag))).encode())
    return digest.hexdigest()[:32]


def output_uri(objects: ObjectStore, bucket: str, photos: list[Photo]) -> str:
    return objects.join(f"s3://{bucket}/", f"{PREDICTIONS_PREFIX}{batch_name(photos)}.jsonl")


def line(photo: Photo, model_version: str | None, predictions: list[dict[str, Any]], label: str | None,
         error: str = "") -> dict[str, Any]:
    answer: dict[str, Any] = {"key": photo.key, "etag": photo.etag, "label": label, "predictions": predictions,
                              "model_version": model_version}
    if error:
        answer["error"] = error
    return answer


def classify(photos: list[Photo], read: Callable[[str], bytes | None], classifier: Classifier, top_k: int = TOP_K,
             time_left: Deadline = NO_DEADLINE) -> list[dict[str, Any]]:
    """One line per photo, in order. `read(key)` gives its bytes (at most MAX_IMAGE_BYTES + 1 of them), or None when
    it is gone. Once `time_left` has passed no further photo is started: the lines are those of the first photos."""
    lines = []
    for photo in photos:
        if time_left.passed():
            break
        data = read(photo.key)
        if data is None:
            lines.append(line(photo, None, [], None, "not_found: removed before it was classified"))
            continue
        if len(data) > MAX_IMAGE_BYTES:
            lines.append(line(photo, None, [], None, f"too_large: the photo has more than {MAX_IMAGE_BYTES} bytes, the limit"))
            continue
        try:
            answer = classifier.predict(data, top_k)
        except ImageError as exc:
            lines.append(line(photo, None, [], None, f"{exc.reason}: {exc.detail}"))
            continue
        if answer is None:
            lines.append(line(photo, None, [], None, "no_model: no model has been approved yet; upload the photo again later"))
            continue
        model, predictions = answer
        lines.append(line(photo, model.entry.version, predictions, model.label(predictions)))
    return lines


def run(photos: list[Photo], objects: ObjectStore, bucket: str, classifier: Classifier, top_k: int = TOP_K,
        time_left: Deadline = NO_DEADLINE) -> tuple[BatchResult, list[Photo]]:
    """Classify one batch and write its output once; answers the result and the photos left (`time_left` passed
    before them). Raises (the store failed): the caller sends the batch back."""
    if not photos:
        return BatchResult(Action.NONE, 0), []
    uri = output_uri(objects, bucket, photos)
    if objects.exists(uri):  # a redelivery of a batch already written
        return BatchResult(Action.DONE_BEFORE, len(photos), uri), []

    def read(key: str) -> bytes | None:
        source = objects.join(f"s3://{bucket}/", key)
        if not objects.exists(source):
            return None
        return objects.read_start(source, MAX_IMAGE_BYTES + 1)  # one byte past the limit tells an object over it

    lines = classify(photos, read, classifier, top_k, time_left)
    done, left = photos[:len(lines)], photos[len(lines):]
    if not done:
        return BatchResult(Action.DEFERRED, len(photos)), left
    if left:  # the output is named after the photos it holds: a delivery of exactly those finds it
        uri = output_uri(objects, bucket, done)
    objects.write(uri, "".join(json.dumps(item, sort_keys=True) + "\n" for item in lines).encode())
    return BatchResult(Action.CLASSIFIED, len(done), uri, errors=sum(1 for item in lines if "error" in item),
                       deferred=len(left) or None), left


def on_messages(messages: list[tuple[str, str]], objects: ObjectStore, bucket: str, classifier: Callable[[], Classifier],
                top_k: int = TOP_K, time_left: Deadline = NO_DEADLINE) -> tuple[BatchResult, list[str]]:
    """One delivery of upload notifications (message id, body): its classify/ photos are one batch. Answers the
    batch's result and the ids of the messages to send back (the store failed, or `time_left` passed before one
    of their photos); `classifier` is built only when the delivery has photos."""
    by_message = [(message_id, photos_in([body], bucket)) for message_id, body in messages]
    photos = sorted({p for _, found in by_message for p in found}, key=lambda p: (p.key, p.etag))
    if not photos:
        return BatchResult(Action.NONE, 0), []
    try:
        result, left = run(photos, objects, bucket, classifier(), top_k, time_left)
    except Exception as exc:  # reading or writing the store failed: the batch comes back (SQS retries it)
        logger.warning("batch classification failed: returned to the queue", extra={"photos": len(photos),
                                                                                   "error": f"{type(exc).__name__}: {exc}"})
        return BatchResult(Action.FAILED, len(photos)), [m for m, found in by_message if found]
    if left:
        logger.warning("the Lambda's time ran short: photos returned to the queue", extra={**result.as_dict(), "left": len(left)})
        return result, [m for m, found in by_message if set(found) & set(left)]
    logger.info("batch classified", extra=result.as_dict())
    return result, []

"""The prediction path: the approved model.tflite on LiteRT, loaded once per container.

Imports only NumPy, Pillow and LiteRT (never TensorFlow). Every `refresh_seconds` a request
asks the model source whether a newer version was approved; a new model is downloaded,
its sha256 verified and an interpreter built *before* the swap, which replaces one
reference. A request already holding the old model finishes on it, so a swap never fails
a request in flight; a model whose checksum does not match is never served.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter

from chalicelib.contract.imaging import load_pixels
from chalicelib.serving.native_log import without_litert_banner
from chalicelib.pipeline.records import ModelEntry
from chalicelib.contract.training_job import not_recognised

NO_MODEL_RECHECK_SECONDS = 5.0  # while nothing is approved, look again at most this often


class ModelSource(Protocol):
    def production_id(self) -> str:
        """A cheap identifier of the production model ("" when none): unchanged -> no reload."""

    def production(self) -> ModelEntry | None: ...

    def read(self, uri: str) -> bytes: ...


class ChecksumError(ValueError):
    pass


@dataclass
class LoadedModel:
    entry: ModelEntry
    metadata: dict[str, Any]
    labels: list[str]
    image_size: int
    interpreter: Any
    input_index: int
    output_index: int
    source_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def created_at(self) -> str:
        return str(self.metadata.get("created_at", ""))

    @property
    def threshold(self) -> float | None:
        """The calibrated top score below which the answer is "not recognised"; None for older models."""
        value = self.metadata.get("threshold")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def label(self, predictions: list[dict[str, Any]]) -> str | None:
        return decide(predictions, self.threshold)

    def probabilities(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        batch = pixels.astype(np.float32)[None]
        with self.lock:  # an interpreter is not thread-safe; each model has its own lock
            self.interpreter.set_tensor(self.input_index, batch)
            self.interpreter.invoke()
            # LiteRT has no type hints: get_tensor gives an array, astype makes it float32
            scores: npt.NDArray[np.float32] = self.interpreter.get_tensor(self.output_index)[0].astype(np.float32)
            return scores


def build(entry: ModelEntry, blob: bytes, metadata: dict[str, Any], source_id: str = "", threads: int | None = None) -> LoadedModel:
    digest = hashlib.sha256(blob).hexdigest()
    if entry.sha256 and digest != entry.sha256:
        raise ChecksumError(f"model {entry.version}: sha256 {digest[:12]}... does not match the registry's {entry.sha256[:12]}...")
    expected = (metadata.get("model") or {}).get("sha256")
    if expected and digest != expected:
        raise ChecksumError(f"model {entry.version}: sha256 does not match metadata.json")
    with without_litert_banner():  # chalicelib/serving/native_log.py: LiteRT's INFO line on fd 2, once per process
        interpreter = Interpreter(model_content=blob, num_threads=threads or os.cpu_count() or 1)
        interpreter.allocate_tensors()
    size = int(metadata["image_size"])
    labels = list(metadata["labels"])
    loaded = LoadedModel(entry, metadata, labels, size, interpreter,
                         interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"], source_id)
    loaded.probabilities(np.zeros((size, size, 3), np.uint8))  # warm up before any request depends on it
    return loaded


def top(probabilities: npt.NDArray[np.float32], labels: list[str], k: int) -> list[dict[str, Any]]:
    k = max(1, min(k, len(labels)))
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": labels[i], "score": round(float(probabilities[i]), 6)} for i in order]


def decide(predictions: list[dict[str, Any]], threshold: float | None) -> str | None:
    """The answer's `label`: the top class, or None ("not recognised") when its score (as shown) is below
    the threshold or it is the background class `other`."""
    best = predictions[0]
    return None if not_recognised(str(best["label"]), float(best["score"]), threshold) else str(best["label"])


class Predictor:
    def __init__(self, source: ModelSource, refresh_seconds: float = 60, clock: Callable[[], float] = time.monotonic,
                 on_error: Callable[[str, Exception], None] | None = None):
        self._source = source
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._on_error = on_error or (lambda what, exc: None)
        self._model: LoadedModel | None = None
        self._checked_at: float | None = None
        self._refreshing = threading.Lock()

    @property
    def model(self) -> LoadedModel | None:
        return self._model

    def current(self) -> LoadedModel | None:
        """The model to answer with, after looking for a newer one when it is time to."""
        now = self._clock()
        interval = self._refresh_seconds if self._model is not None else min(self._refresh_seconds, NO_MODEL_RECHECK_SECONDS)
        if self._checked_at is None or now - self._checked_at >= interval:
            # One thread refreshes; the others go on with the model they have.
            if self._refreshing.acquire(blocking=self._model is None):
                try:
                    self._checked_at = now
                    self.refresh()
                finally:
                    self._refreshing.release()
        return self._model

    def refresh(self) -> bool:
        """Load the production model if it changed. True when a new model was swapped in."""
        try:
            source_id = self._source.production_id()
            if not source_id or (self._model is not None and self._model.source_id == source_id):
                return False
            entry = self._source.production()
            if entry is None:
                return False
            metadata = json.loads(self._source.read(entry.metadata_uri))
            loaded = build(entry, self._source.read(entry.model_uri), metadata, source_id)
        except Exception as exc:  # keep serving what we have; the next check tries again
            self._on_error("model refresh failed", exc)
            return False
        self._model = loaded  # the swap: one reference
        return True

    def predict(self, image: bytes, top_k: int) -> tuple[LoadedModel, list[dict[str, Any]]] | None:
        model = self.current()
        if model is None:
            return None
        pixels = load_pixels(image, model.image_size).pixels  # raises ImageError for bad input
        return model, top(model.probabilities(pixels), model.labels, top_k)

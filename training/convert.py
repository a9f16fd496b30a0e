"""The `convert` entrypoint: SavedModel -> verified `.tflite` (+ labels.txt, metadata.json).

    python -m training.convert MODEL_DIR OUTPUT_DIR --data DATASET_DIR
        [--quantize auto|fp32|fp16|dynamic|int8] [--baseline SERVED_MODEL_DIR] [--features-out FEATURES_DIR]

MODEL_DIR is a training job's model folder, or a folder holding its `model.tar.gz`
(a SageMaker Processing job gets it that way). Every conversion is checked on the test
split of DATASET_DIR (the same hash split training used): top-1 of the SavedModel, of
the `.tflite`, and how often the two agree. `auto` keeps the smallest model within
0.5 point of the SavedModel's accuracy. `--baseline` also scores the model now in
production on the same test photos, so the promotion gate compares like with like.
`--features-out` hands the feature cache's new entries, which the training job left in its model
folder, on to the cache (training/feature_cache.py `hand_on`): the training job itself has no network.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.contract.feature_cache import NEW_FOLDER
from chalicelib.contract.training_job import LABELS_FILE, METADATA_FILE, MODEL_FILE, SAVED_MODEL_DIR
from chalicelib.contract.vocabulary import ContainerPath, ContainerVariable, Quantization, values
from training import dataset as ds

MODES = tuple(values(*Quantization)[1:])  # the candidates: every mode but AUTO, which chooses among them
AUTO_TOLERANCE = 0.005  # accuracy points (0.5 %) a smaller model may lose against the float one
REFUSAL_TOLERANCE = 0.02  # share of held-out photos whose "not recognised" verdict a smaller model may change
REPRESENTATIVE_IMAGES = 400


class ConversionError(ValueError):
    pass


def unpack(model_dir: Path, scratch: Path) -> Path:
    """A folder with the SavedModel, unpacking `model.tar.gz` when that is what we were given."""
    if (model_dir / SAVED_MODEL_DIR).is_dir():
        return model_dir
    archive = model_dir / "model.tar.gz" if model_dir.is_dir() else model_dir
    if archive.is_file() and tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
        if (scratch / SAVED_MODEL_DIR).is_dir():
            return scratch
    raise ConversionError(f"{model_dir} holds neither {SAVED_MODEL_DIR}/ nor a model.tar.gz with one")


def to_tflite(saved_model: Path, mode: str, representative: np.ndarray | None = None,
              float_model: bytes | None = None) -> bytes:
    """The `.tflite` of `saved_model` in `mode`. int8 reads the familiarity gate's tensor names from the float
    conversion: pass `float_model` when it is at hand, or it is converted again."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if mode in (Quantization.FP16, Quantization.DYNAMIC, Quantization.INT8):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == Quantization.FP16:
        converter.target_spec.supported_types = [tf.float16]
    if mode == Quantization.INT8:
        if representative is None or not len(representative):
            raise ConversionError("int8 needs representative images from the training split")

        def samples():
            for image in representative:
                yield [image[None].astype(np.float32)]

        converter.representative_dataset = samples
        gate = gate_tensors(float_model if float_model is not None else to_tflite(saved_model, Quantization.FP32))
        if gate:
            # Integer kernels for the network; the familiarity gate's distances lose everything in int8
            # (every photo would look unfamiliar), so its few ops stay float.
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
            options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=gate)
            debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=samples,
                                                                 debug_options=options)
            return bytes(debugger.get_nondebug_quantized_model())
        # Integer kernels throughout; float32 in and out so every client feeds the same input.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return bytes(converter.convert())


def gate_tensors(float_model: bytes) -> list[str]:
    """The names of the familiarity gate's tensors in a model's float conversion (none without a gate)."""
    from ai_edge_litert.interpreter import Interpreter

    from training.model import GATE_LAYER

    names = [t["name"] for t in Interpreter(model_content=float_model).get_tensor_details()]
    return [name for name in names if re.search(rf"/{GATE_LAYER}(_\d+)?/", name)]


def tflite_predict(model: bytes | str, images: np.ndarray, batch: int = 32, threads: int | None = None) -> np.ndarray:
    """Class probabilities from a `.tflite` (bytes or path) with LiteRT, batch by batch."""
    from ai_edge_litert.interpreter import Interpreter

    kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    interpreter = Interpreter(num_threads=threads or os.cpu_count() or 1, **kwargs)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    results, current = [], None
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch].astype(np.float32)
        if current != len(chunk):
            interpreter.resize_tensor_input(inp["index"], [len(chunk), *inp["shape"][1:]])
            interpreter.allocate_tensors()
            current = len(chunk)
        interpreter.set_tensor(inp["index"], chunk)
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"]).astype(np.float32))
    return np.concatenate(results) if results else np.zeros((0, 0), np.float32)


def saved_model_predict(saved_model: Path, images: np.ndarray, batch: int = 32) -> np.ndarray:
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    outputs = []
    for start in range(0, len(images), batch):
        result = serve(tf.constant(images[start : start + batch], tf.float32))
        outputs.append(next(iter(result.values())).numpy())
    return np.concatenate(outputs)


def choose(candidates: list[dict], float_accuracy: float) -> dict:
    """`auto`: the smallest candidate within AUTO_TOLERANCE of the float model's accuracy whose "not
    recognised" verdicts change on at most REFUSAL_TOLERANCE of the held-out photos.

    Both accuracies are on every held-out photo (validation and test), so that on a small
    data set a single borderline photo is not worth more than the tolerance itself.
    """
    good = [c for c in candidates if c["held_out_accuracy"] >= float_accuracy - AUTO_TOLERANCE - 1e-9
            and c.get("held_out_refusal_agreement", 1.0) >= 1 - REFUSAL_TOLERANCE - 1e-9]
    if good:
        return min(good, key=lambda c: (c["size_bytes"], -c["held_out_accuracy"]))
    return max(candidates, key=lambda c: c["held_out_accuracy"])


def calibration_metrics(probabilities: np.ndarray, truth: np.ndarray, metadata: dict) -> dict[str, float]:
    """ECE (15 bins) of the converted model's scores, and of the scores before calibration.

    The exported graph divides its logits by the temperature training fitted; log p recovers those
    logits up to a constant per photo, so softmax(T x log p) are the uncalibrated scores. A model
    without a temperature (trained before calibration) has the same ECE twice.
    """
    from training import calibration

    temperature = float((metadata.get("calibration") or {}).get("temperature") or 1.0)
    before = calibration.softmax(temperature * calibration.logits_of(probabilities))
    return {"ece_uncalibrated": calibration.expected_calibration_error(before, truth),
            "ece": calibration.expected_calibration_error(probabilities, truth)}


def test_split(data_dir: Path, metadata: dict,
               labels: list[str]) -> tuple[ds.Dataset, str, ds.SplitArrays, tuple[float, float, float]]:
    """The test photos training set aside (validation when the data set had no test photos)."""
    fractions = tuple(metadata.get("hyperparameters", {}).get("splits", (0.8, 0.1, 0.1)))
    data = ds.load(data_dir, metadata["image_size"], fractions, min_images_per_class=0,
                   only_splits=("validation", "test"), labels=labels)
    name = "test" if len(data.splits["test"].paths) else "validation"
    return data, name, data.splits[name], fractions


def representative(data_dir: Path, labels: list[str], fractions: tuple[float, float, float], size: int,
                   limit: int = REPRESENTATIVE_IMAGES) -> np.ndarray:
    """Up to `limit` training-split images, spread over the classes, for int8 calibration."""
    found = ds.scan(data_dir)
    train = [e for e in found.examples if e.label in set(labels) and ds.split_of(e.sha256, fractions) == "train"]
    train.sort(key=lambda e: e.sha256)  # deterministic and mixed across classes
    _, pixels, _ = ds.decode(found.root, train[:limit], size)
    return np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.uint8)


def score_baseline(baseline_dir: Path, images: np.ndarray, truth: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, each class's figures and the most confused pairs of the model in production on the candidate's
    test photos."""
    from training.evaluation import classification_metrics

    try:
        meta = json.loads((baseline_dir / METADATA_FILE).read_text())
        if meta.get("labels") != labels:
            return {"skipped": "the production model has other classes"}
        if meta.get("image_size") != images.shape[1]:
            return {"skipped": "the production model takes another input size"}
        predicted = tflite_predict(str(baseline_dir / MODEL_FILE), images).argmax(axis=1)
    except (OSError, ValueError, KeyError) as exc:
        return {"skipped": f"cannot score the production model: {exc}"}
    scored = classification_metrics(truth, predicted, labels)  # the gate compares every class's recall too
    return {"accuracy": float((predicted == truth).mean()) if len(truth) else 0.0,
            "sha256": meta.get("model", {}).get("sha256", ""),
            "per_class_recall": {label: values["recall"] for label, values in scored["per_class"].items()},
            # precision, recall, F1 and support of every class, and the most confused pairs, beside the candidate's
            "per_class": scored["per_class"], "confused_pairs": scored["confused_pairs"]}


AUTHOR = "flowers pipeline"


def write_with_metadata(output_dir: Path, blob: bytes, result: dict) -> bytes:
    """model.tflite with TFLite Metadata, as MediaPipe Tasks and Android Studio's ML binding read it.

    Name, description, version (the data set version the model was trained on) and author; the
    input as an RGB image whose NormalizationOptions (mean 0, std 1) say the graph takes [0, 255]
    pixels and normalises them itself; labels.txt as the output's TENSOR_AXIS_LABELS file; and
    metadata.json's `threshold`, when it has a numeric one, as ScoreThresholdingOptions. Writes the
    file and points result["model"] at it (its sha256 and size are those of the file with metadata).
    """
    try:
        from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb
        from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier, metadata_info, writer_utils
    except ImportError as exc:  # pinned in requirements-nodeps.txt (installed with --no-deps)
        raise ConversionError(f"tflite-support is needed to write the model's metadata: {exc}") from exc

    labels_path = output_dir / LABELS_FILE
    labels = [line for line in labels_path.read_text().splitlines() if line]
    version = str(result.get("dataset_version") or result.get("test_set", {}).get("dataset_version") or "")
    threshold = result.get("threshold")
    size = result.get("image_size")
    general = metadata_info.GeneralMd(
        name=f"flowers {result.get('preset', 'classifier')}".strip(),
        version=version,
        description=(f"Classifies a photo into one of {len(labels)} classes ({', '.join(labels)}). "
                     f"Input: an RGB image resized to {size}x{size} (squashed, bilinear), pixels in [0, 255]; "
                     f"normalisation is inside the model. Output: one probability per label. "
                     f"Quantization: {result.get('quantization')}; data set version {version}."),
        author=AUTHOR)
    input_md = metadata_info.InputImageTensorMd(
        name="image", description="RGB pixels in [0, 255]; the model normalises them itself.",
        norm_mean=[0.0], norm_std=[1.0], color_space_type=fb.ColorSpaceType.RGB,
        tensor_type=writer_utils.get_input_tensor_types(blob)[0])
    output_md = metadata_info.ClassificationTensorMd(
        name="probability", description="The probability of each label (labels.txt).",
        label_files=[metadata_info.LabelFileMd(file_path=str(labels_path))],
        tensor_type=writer_utils.get_output_tensor_types(blob)[0])
    output_tensor = output_md.create_metadata()
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and 0.0 <= threshold <= 1.0:  # not NaN
        # The writer has no argument for it: the output tensor gets the process unit itself.
        thresholding = fb.ProcessUnitT()
        thresholding.optionsType = fb.ProcessUnitOptions.ScoreThresholdingOptions
        thresholding.options = fb.ScoreThresholdingOptionsT()
        thresholding.options.globalScoreThreshold = float(threshold)
        output_tensor.processUnits = [*(output_tensor.processUnits or []), thresholding]
    writer = image_classifier.MetadataWriter.create_from_metadata(
        bytearray(blob), general.create_metadata(), [input_md.create_metadata()], [output_tensor],
        associated_files=[str(labels_path)])
    final = bytes(writer.populate())
    (output_dir / MODEL_FILE).write_bytes(final)
    result["model"] = {"file": MODEL_FILE, "sha256": hashlib.sha256(final).hexdigest(), "size_bytes": len(final)}
    return final


def convert(model_dir: Path, output_dir: Path, data_dir: Path, quantize: str = Quantization.AUTO.value,
            baseline: Path | None = None, features_out: Path | None = None) -> dict:
    from training import calibration, feature_cache
    from training.evaluation import classification_metrics

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flowers-convert-") as tmp:
        source = unpack(Path(model_dir), Path(tmp))
        if features_out is not None:
            handed, refused = feature_cache.hand_on(source / NEW_FOLDER, Path(features_out))
            print(f"feature cache: {handed} new entr(ies) handed on to {features_out}"
                  + (f", {refused} file(s) that are no entry left behind" if refused else ""), flush=True)
        metadata = json.loads((source / METADATA_FILE).read_text())
        labels = [line for line in (source / LABELS_FILE).read_text().splitlines() if line]
        saved = source / SAVED_MODEL_DIR
        if not Path(data_dir).is_dir():
            raise ConversionError(f"--data {data_dir} is not a folder: every conversion is checked on the test split")
        data, split_name, test, fractions = test_split(Path(data_dir), metadata, labels)
        if not len(test.paths):
            raise ConversionError(f"no test or validation photos of the model's classes in {data_dir}")
        images = test.images.astype(np.float32)
        # Held out = validation + test photos: the test split alone when it is all there is.
        other = data.splits["validation"] if split_name == "test" else None
        held_images = np.concatenate([images, other.images]).astype(np.float32) if other is not None else images
        held_truth = np.concatenate([test.labels, other.labels]) if other is not None else test.labels
        held_scores = saved_model_predict(saved, held_images)
        held_reference = held_scores.argmax(axis=1)
        threshold = metadata.get("threshold") if isinstance(metadata.get("threshold"), (int, float)) else None
        refused_reference = calibration.refused(held_scores, threshold, labels)
        reference = held_reference[: len(images)]
        float_accuracy = float((reference == test.labels).mean())
        float_held_out = float((held_reference == held_truth).mean())
        modes = MODES if quantize == Quantization.AUTO else (quantize,)
        samples = representative(Path(data_dir), labels, fractions, metadata["image_size"]) if Quantization.INT8 in modes else None

        candidates: list[dict[str, Any]] = []
        models: dict[str, tuple[bytes, np.ndarray]] = {}
        scores: dict[str, np.ndarray] = {}  # each mode's probabilities on the test photos
        for mode in modes:
            t0 = time.monotonic()
            blob = to_tflite(saved, mode, samples, float_model=models[Quantization.FP32][0] if Quantization.FP32 in models else None)
            held_probabilities = tflite_predict(blob, held_images)
            scores[mode] = held_probabilities[: len(images)]
            held_predicted = held_probabilities.argmax(axis=1)
            predicted = held_predicted[: len(images)]
            candidates.append({
                "quantization": mode,
                "size_bytes": len(blob),
                "accuracy": float((predicted == test.labels).mean()),
                "agreement": float((predicted == reference).mean()),
                "held_out_accuracy": float((held_predicted == held_truth).mean()),
                "held_out_agreement": float((held_predicted == held_reference).mean()),
                # the "not recognised" verdicts: the familiarity gate and the threshold must survive quantisation
                "held_out_refusal_agreement": float((calibration.refused(held_probabilities, threshold, labels) == refused_reference).mean()),
                "seconds": round(time.monotonic() - t0, 1),
            })
            models[mode] = (blob, predicted)
            print(f"quantization={mode} size_bytes={len(blob)} accuracy={candidates[-1]['accuracy']:.4f} "
                  f"agreement={candidates[-1]['agreement']:.4f}", flush=True)
        chosen = choose(candidates, float_held_out) if quantize == Quantization.AUTO else candidates[0]
        blob, predicted = models[chosen["quantization"]]

        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / MODEL_FILE).write_bytes(blob)
        shutil.copyfile(source / LABELS_FILE, output_dir / LABELS_FILE)
        test_metrics = classification_metrics(test.labels, predicted, labels)
        test_metrics["evaluated_on"] = split_name
        test_metrics.update(calibration_metrics(scores[chosen["quantization"]], test.labels, metadata))
        test_metrics["refused"] = float(calibration.refused(scores[chosen["quantization"]], threshold, labels).mean())
        result = dict(metadata)
        result.update({
            "quantization": chosen["quantization"],
            "model": {"file": MODEL_FILE, "sha256": hashlib.sha256(blob).hexdigest(), "size_bytes": len(blob)},
            "metrics": {"test": test_metrics, "val_accuracy": metadata.get("metrics", {}).get("val_accuracy"),
                        "saved_model_test_accuracy": float_accuracy, "saved_model_held_out_accuracy": float_held_out,
                        "held_out_count": len(held_truth), "training_test": metadata.get("metrics", {}).get("test")},
            "test_set": {
                "split": split_name,
                "count": len(test.paths),
                "sha256": hashlib.sha256("\n".join(sorted(test.paths)).encode()).hexdigest()[:16],
                "dataset_version": data.scan.version,
            },
            "conversion": {"requested": quantize, "candidates": candidates, "tolerance": AUTO_TOLERANCE,
                           "seconds": round(time.monotonic() - started, 1)},
            "converted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        if baseline is not None:
            result["metrics"]["baseline"] = score_baseline(Path(baseline), images, test.labels, labels)
        blob = write_with_metadata(output_dir, blob, result)
        (output_dir / METADATA_FILE).write_text(json.dumps(result, indent=2) + "\n")
    print(f"chosen quantization={chosen['quantization']} test_accuracy={test_metrics['accuracy']:.4f} "
          f"saved_model_accuracy={float_accuracy:.4f} size_bytes={len(blob)}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="the data set the model was trained on (its test split checks the conversion)")
    parser.add_argument("--quantize", choices=values(*Quantization), default=Quantization.AUTO.value)
    parser.add_argument("--baseline", type=Path, help="the served model's folder, scored on the same test photos")
    parser.add_argument("--features-out", type=Path,
                        help="where the feature cache's new entries from the model folder go (the cache's upload)")
    args = parser.parse_args(argv)
    try:
        convert(args.model_dir, args.output_dir, args.data, args.quantize, args.baseline, args.features_out)
    except (ConversionError, ds.DatasetError, OSError, json.JSONDecodeError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        failure = Path(os.environ.get(ContainerVariable.OUTPUT_DIR, ContainerPath.OUTPUT_DIR)) / "failure"
        try:
            failure.parent.mkdir(parents=True, exist_ok=True)
            failure.write_text(str(exc)[:1000])
        except OSError:
            pass
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Input-pipeline overhead of fine-tuning on a GPU: the same model, batch and fit() fed

- `synthetic`: one batch of random uint8 pixels (what the pipeline yields) already on the
  device, every step;
- `real`: real photos through training's tf.data pipeline (shuffle, batch, augmentation on
  the CPU, prefetch), exactly as phase 2 of `training.train` feeds them;
- `real_no_augment`: the same pipeline without augmentation (what augmentation costs);
- `real_copied_ahead`: `real` with each batch copied to the device by a thread, ahead of its
  step (what TensorFlow's prefetch to a GPU does; Keras' JAX fit() copies between steps);
- `real_device_augment` (TensorFlow backend only): the pipeline hands uint8 photos and each
  photo's augmentation parameters, and the training step augments the batch on the device
  (`training/device_augment.py`), as `training.train` does with a GPU;
- `pipeline_only`: the pipeline iterated with no model at all (the CPUs' ceiling), also with
  a new iterator every epoch and with TensorFlow's default threading, for comparison.

Target: `real` (or a faster feed of the same photos) at least 0.9x the images/s of `synthetic`
(overhead at most 10 %).

  KERAS_BACKEND=jax python bench/gpu_input.py DATASET_DIR [--preset resnet_v1_50] [--batch-size 32]
  KERAS_BACKEND=tensorflow python bench/gpu_input.py DATASET_DIR   # with TensorFlow for CUDA

The model steps run on Keras' JAX backend: a fit() fed a JAX array keeps it on the device,
so `synthetic` really never touches the host, and a CUDA build of JAX is what GPU machines
without TensorFlow's CUDA libraries have. The tf.data pipeline is TensorFlow's either way.
Photos are decoded once by `training.dataset`, as in training; that one-off decode is timed
separately and is not part of the per-step comparison.

Augmenting on the device needs the TensorFlow backend, as the training image has it: the transforms
are TensorFlow ops (ImageProjectiveTransformV3 and TensorFlow's stateless random numbers, which give
the CPU path's photos bit for bit), and no JAX step can run them; a keras.ops copy would time
another warp (Keras' JAX one), not the one training runs. On TensorFlow, `synthetic` is one batch
repeated by tf.data (copied to the GPU every step, as real batches are), `real_copied_ahead` is left
out (TensorFlow's trainer already takes batches inside its step), and a model whose step augments
runs without XLA (ImageProjectiveTransformV3 has no XLA kernel): `jit_compile` says which did.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import queue
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_RATIO = 0.9


def _device() -> tuple[str, bool]:
    """The device's name and whether it is a GPU, on the backend that runs the model."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return device.device_kind, device.platform == "gpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU", False
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU"), True


def _sync(model) -> None:
    """Wait for the device: the last step has produced every variable once one is ready."""
    import keras

    keras.ops.convert_to_numpy(model.trainable_variables[-1])


def _timed_fit(model, data, epochs: int, steps: int | None, images: int) -> float:
    """images/s of fit() over `epochs` epochs (compiled already)."""
    start = time.perf_counter()
    model.fit(data, epochs=epochs, steps_per_epoch=steps, shuffle=False, verbose=0)
    _sync(model)
    return images * epochs / (time.perf_counter() - start)


def _on_device_ahead(data, depth: int = 2):
    """The batches of `data`, each copied to the device by a thread while earlier ones train:
    what TensorFlow's prefetch to a GPU does, which Keras' JAX fit() does not (it copies each
    batch on its main thread, between steps). The thread ends once fit() lets go of this."""
    import jax

    ahead: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def copy():
        for batch in data.as_numpy_iterator():
            on_device = jax.device_put(batch)
            while not stop.is_set():
                try:
                    ahead.put(on_device, timeout=0.1)
                    break
                except queue.Full:
                    pass
            if stop.is_set():
                return

    threading.Thread(target=copy, daemon=True).start()
    try:
        while True:
            yield ahead.get()
    finally:
        stop.set()


def _pipeline_only(data, steps: int, batch: int) -> float:
    """images/s of an endless pipeline iterated with no model (after its first batch)."""
    iterator = iter(data)
    next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * batch / (time.perf_counter() - start)


def _pipeline_epochs(data, epochs: int, images: int) -> float:
    """images/s of a finite pipeline iterated `epochs` times, a new iterator each time."""
    start = time.perf_counter()
    for _ in range(epochs):
        for _batch in data:
            pass
    return images * epochs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a data set folder in either layout")
    parser.add_argument("--preset", default="resnet_v1_50")
    parser.add_argument("--image-size", type=int, default=0, help="0: the preset's")
    parser.add_argument("--batch-size", type=int, default=0, help="0: training's default")
    parser.add_argument("--min-seconds", type=float, default=6.0, help="length of each timed run")
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each variant, interleaved")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (a smoke test of this script)")
    parser.add_argument("--out", default="", help="write the figures here as JSON")
    args = parser.parse_args(argv)

    if os.environ.get("KERAS_BACKEND", "") == "jax":
        try:
            import jax  # before Keras, which would fail on its absence less clearly
        except ImportError:
            print('error: needs JAX with CUDA in this environment: pip install "jax[cuda12]"', file=sys.stderr)
            return 2
    import keras

    if keras.backend.backend() not in ("jax", "tensorflow"):
        print("error: run with KERAS_BACKEND=jax or tensorflow (see the docstring)", file=sys.stderr)
        return 2
    on_jax = keras.backend.backend() == "jax"
    if on_jax:
        import jax
    import numpy as np
    import tensorflow as tf

    from chalicelib.contract.hyperparameters import HyperparameterProblem
    from training import dataset as ds
    from training import device_augment, input_pipeline
    from training.hyperparameters import parse
    from training.model import build, unfreeze_top
    from training.presets import PRESETS

    device, on_gpu = _device()
    if not on_gpu and not args.allow_cpu:
        print(f"error: no GPU visible to {keras.backend.backend()} (device: {device}); --allow-cpu runs it anyway",
              file=sys.stderr)
        return 2
    if on_gpu:
        keras.mixed_precision.set_global_policy("mixed_float16")  # as training does on a GPU
    raw = {"preset": args.preset, "image_size": args.image_size}
    if args.batch_size:
        raw["batch_size"] = args.batch_size
    try:
        hp = parse(raw)  # validated as a training job's: the same message for a bad value
    except HyperparameterProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seed = hp.seed
    keras.utils.set_random_seed(seed)
    preset = PRESETS[hp.preset]
    size = hp.resolved_image_size()

    started = time.perf_counter()
    data = ds.load(args.dataset, size, min_images_per_class=1)
    decode_seconds = time.perf_counter() - started
    train = data.splits["train"]
    n, batch = len(train.paths), hp.batch_size
    targets = keras.utils.to_categorical(train.labels, len(data.labels))
    print(f"{n} training photos at {size} px decoded in {decode_seconds:.1f}s; {preset.name}, batch {batch}, "
          f"device {device}, {os.cpu_count()} CPUs, Keras backend {keras.backend.backend()}", flush=True)

    # Phase 2 of training with its default hyperparameters: the preset's top layers unfrozen,
    # the same optimizer, peak learning rate, loss and metric.
    clf = build(preset, None, size, len(data.labels), dropout=hp.dropout)
    unfreeze_top(clf.backbone, hp.resolved_fine_tune_layers())
    model = clf.full

    def compiled(trainee):
        trainee.compile(optimizer=keras.optimizers.Adam(hp.learning_rate * hp.resolved_fine_tune_lr_scale()),
                        loss=keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing),
                        metrics=["accuracy"])
        return trainee

    compiled(model)

    def real(augment: bool, repeat: bool = True, augment_on: str = "cpu"):  # as phase 2 of training feeds fit()
        return input_pipeline.batches(train.images, targets, batch, seed=seed, shuffle=True, augment=augment, repeat=repeat,
                                      augment_on=augment_on)

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)  # what the pipeline yields
    y = targets[rng.integers(0, n, batch)]

    def synthetic():
        if not on_jax:  # one batch repeated: copied to the GPU each step, as real batches are
            return tf.data.Dataset.from_tensors((x, y)).repeat()
        on_device = jax.device_put(x), jax.device_put(y)

        def forever():
            while True:
                yield on_device

        return forever()

    steps = -(-n // batch)  # synthetic epochs as long as real ones, in full batches
    variants = {  # name: (data maker, steps per epoch, images per epoch, model trained)
        "synthetic": (synthetic, steps, steps * batch, model),
        "real": (lambda: real(True), steps, steps * batch, model),
        "real_no_augment": (lambda: real(False), steps, steps * batch, model),
    }
    if on_jax:
        variants["real_copied_ahead"] = (lambda: _on_device_ahead(real(True)), steps, steps * batch, model)
        print("  (real_device_augment needs KERAS_BACKEND=tensorflow: the augmentation is TensorFlow ops)", flush=True)
    else:
        variants["real_device_augment"] = (lambda: real(True, augment_on="device"), steps, steps * batch,
                                           compiled(device_augment.wrap(model)))
    # Warm-up: compile, then time an epoch to choose how many epochs make each timed run last --min-seconds.
    epochs = {}
    for name, (make, steps_per_epoch, images, trainee) in variants.items():
        trainee.fit(make(), epochs=1, steps_per_epoch=steps_per_epoch, shuffle=False, verbose=0)
        rate = _timed_fit(trainee, make(), 1, steps_per_epoch, images)
        epochs[name] = max(1, math.ceil(args.min_seconds * rate / images))
        print(f"  warm-up {name:19} {rate:8.1f} images/s -> {epochs[name]} epochs per timed run "
              f"(jit_compile={trainee.jit_compile})", flush=True)

    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (make, steps_per_epoch, images, trainee) in variants.items():
            rates[name].append(_timed_fit(trainee, make(), epochs[name], steps_per_epoch, images))
            print(f"  {name:19} {rates[name][-1]:8.1f} images/s", flush=True)
    # The pipeline alone, as training runs it and two ways it could: an iterator per epoch, and
    # TensorFlow's default intra-op threading.
    default_threading = tf.data.Options()
    default_threading.threading.max_intra_op_parallelism = 0
    pipeline_steps = epochs["real"] * steps
    pipelines = {
        "pipeline_only": _pipeline_only(real(True), pipeline_steps, batch),
        "pipeline_only_iterator_per_epoch": _pipeline_epochs(real(True, repeat=False), epochs["real"], n),
        "pipeline_only_default_threading": _pipeline_only(real(True).with_options(default_threading), pipeline_steps, batch),
    }

    figures = {name: statistics.median(values) for name, values in rates.items()}
    fed = [name for name in ("real", "real_copied_ahead", "real_device_augment") if name in figures]
    ratio = max(figures[name] for name in fed) / figures["synthetic"]
    print(f"\n{preset.name} {size}px batch {batch} on {device}, {os.cpu_count()} CPUs, fit() images/s "
          f"(median of {args.rounds} runs of at least {args.min_seconds:g}s; {n} photos per epoch):")
    for name, rate in figures.items():
        print(f"  {name:32} {rate:8.1f}   {rate / figures['synthetic']:.2f}x synthetic")
    for name, rate in pipelines.items():
        print(f"  {name:32} {rate:8.1f}   (no model: what the CPUs can feed)")
    ok = ratio >= TARGET_RATIO
    print(f"{'PASS' if ok else 'FAIL'}: real photos ({', '.join(fed)}: the best) run at {ratio:.2f}x synthetic tensors "
          f"(overhead {100 * (1 - ratio):.1f} %, target <= {100 * (1 - TARGET_RATIO):.0f} %)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({
            "preset": preset.name, "image_size": size, "batch_size": batch, "photos": n,
            "device": device, "cpus": os.cpu_count(),
            "backend": f"jax {jax.__version__}" if on_jax else f"tensorflow {tf.__version__}",
            "jit_compile": {name: bool(variant[3].jit_compile) for name, variant in variants.items()},
            "keras": keras.__version__, "mixed_precision": on_gpu, "decode_seconds": round(decode_seconds, 2),
            "epochs_per_run": epochs, "rounds": rates, "images_per_second": figures,
            "pipeline_only_images_per_second": pipelines, "ratio_real_to_synthetic": ratio,
            "target_ratio": TARGET_RATIO, "pass": ok,
        }, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

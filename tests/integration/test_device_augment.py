"""Augmentation on the device (training/device_augment.py): the same photos as `augment_photo`, bit for bit on
the CPU; the CPU path stays the default without a GPU; a job that augments on the device exports a model
without the augmentation."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from chalicelib.contract.imaging import load_pixels
from data_fixtures import PHOTOS, ROOT, TINY, Job, make_folder_dataset, run_in_process
from training import device_augment as da
from training import augmentation
from training import input_pipeline as ip


def _photos(count: int, height: int, width: int, seed: int) -> np.ndarray:
    """Noise, flat black and white (brightness and contrast saturate), and real photos where present."""
    rng = np.random.default_rng(seed)
    photos = rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    photos[0], photos[1] = 0, 255
    photos[2] = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]  # a ramp: every grey level
    if PHOTOS.exists():
        for i, path in enumerate(sorted((PHOTOS / "roses").glob("*.jpg"))[: count - 3]):
            square = load_pixels(path.read_bytes(), max(height, width)).pixels
            photos[3 + i] = square[:height, :width]
    return photos


@pytest.mark.parametrize("height,width", [(32, 32), (33, 31), (48, 65), (224, 224)])
def test_batched_augmentation_is_augment_photo_bit_for_bit(height, width):
    """Many seeds (full-range int64, as tf.data.Dataset.random draws them), odd and even sizes: no pixel differs."""
    photos = _photos(12, height, width, seed=height * width)
    rng = np.random.default_rng(height + width)
    for _ in range(3):
        seeds = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, (len(photos), 2), dtype=np.int64)
        batched = da.augment_batch(photos, seeds).numpy()
        one_by_one = np.stack([augmentation.augment_photo(tf.constant(p), tf.constant(s)).numpy() for p, s in zip(photos, seeds)])
        assert batched.dtype == np.uint8 and batched.shape == photos.shape
        assert np.array_equal(batched, one_by_one)
        assert not np.array_equal(batched, photos)


def test_the_device_feed_gives_the_cpu_pipelines_photos():
    """batches(augment_on="device") hands each photo's parameters, drawn from the seed the CPU path gives that
    photo; the wrapper's layer then makes the CPU path's photos, epoch after epoch. Validation: zeros, unused."""
    photos = _photos(6, 40, 40, seed=3)
    labels = np.arange(len(photos), dtype=np.int32)

    def epochs(augment_on: str, augment: bool = True):
        d = ip.batches(photos, labels, 4, seed=9, shuffle=True, augment=augment, repeat=True, augment_on=augment_on)
        return list(d.take(4).as_numpy_iterator())

    layer = da.DeviceAugment()
    for (cpu_photos, cpu_labels), ((device_photos, params), device_labels) in zip(epochs("cpu"), epochs("device")):
        assert np.array_equal(cpu_labels, device_labels) and params.shape == (4, da.PARAMETERS)
        assert np.array_equal(device_photos, photos[device_labels])  # untouched until the training step
        augmented = layer([device_photos, params], training=True).numpy()
        assert augmented.dtype == np.float32 and np.array_equal(augmented, cpu_photos.astype(np.float32))
        assert np.array_equal(layer([device_photos, params], training=False).numpy(), device_photos.astype(np.float32))
    for (plain, _), ((fed, params), _) in zip(epochs("cpu", augment=False), epochs("device", augment=False)):
        assert np.array_equal(plain, fed) and not params.any()
    with pytest.raises(ValueError, match="augment_on"):
        ip.batches(photos, labels, 4, seed=9, augment_on="gpu")


def test_where_augmentation_runs():
    assert not tf.config.list_physical_devices("GPU")  # these tests run on the CPU
    assert da.where("auto") == "cpu" and da.where("cpu") == "cpu" and da.where("device") == "device"
    assert da.where("device", augmentation=False) == "none" and da.where("auto", augmentation=False) == "none"
    with pytest.raises(ValueError, match="augment_on"):
        da.where("gpu")


def _train(tmp_path, data, name: str, **values) -> tuple[Job, list, tuple[int, set[str]]]:
    import keras

    from training import train

    job = Job(tmp_path / name, data).hyperparameters(**dict(TINY, epochs=3, seed=5, **values))
    assert run_in_process(job, train.main) == 0
    assert job.metadata()["training"]["history"][-1]["phase"] == "fine_tune"
    model = keras.saving.load_model(job.model / "model.keras", compile=False)
    kinds = {type(layer).__name__ for layer in model._flatten_layers()}
    return job, model.get_weights(), (len(model.inputs), kinds)


def test_on_the_cpu_auto_is_the_cpu_path_and_device_trains_the_same_model(tmp_path, capsys):
    """Without a GPU the default (auto) is tf.data's augmentation, bit for bit; augment_on=device trains the
    wrapper on the same photos, and the model it exports has no augmentation in it, nor a second input."""
    data = make_folder_dataset(tmp_path / "data", per_class=10)
    auto_job, auto, _ = _train(tmp_path, data, "auto")
    assert "augment_on=cpu" in capsys.readouterr().out
    assert auto_job.metadata()["training"]["augment_on"] == "cpu"  # where it ran, not only what was asked
    _, cpu, _ = _train(tmp_path, data, "cpu", augment_on="cpu")
    job, device, (inputs, kinds) = _train(tmp_path, data, "device", augment_on="device")
    assert "augment_on=device" in capsys.readouterr().out
    assert job.metadata()["hyperparameters"]["augment_on"] == "device" and job.metadata()["training"]["augment_on"] == "device"
    assert all(np.array_equal(a, b) for a, b in zip(auto, cpu))
    assert all(np.array_equal(a, b) for a, b in zip(cpu, device))
    assert inputs == 1 and "DeviceAugment" not in kinds and "Conv2D" in kinds

    loaded = tf.saved_model.load(str(job.model / "saved_model"))
    signature = loaded.signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, 32, 32, 3]
    graph_ops = {op.type for f in [signature] for op in f.graph.get_operations()}
    functions = {node.op for fn in signature.graph.as_graph_def().library.function for node in fn.node_def}
    assert "ImageProjectiveTransformV3" not in graph_ops | functions


def test_device_augmentation_under_mirrored_strategy(tmp_path, colour_data):
    """Two replicas (two logical CPUs): each gets its share of the photos with their parameters; the same
    model as the CPU path's."""
    import subprocess
    import sys

    import keras

    weights = {}
    for where in ("cpu", "device"):
        job = Job(tmp_path / where, colour_data).hyperparameters(**dict(TINY, augment_on=where))
        proc = subprocess.run([sys.executable, "-m", "training.train"], env=job.env(FLOWERS_CPU_DEVICES="2"), cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "strategy=mirrored replicas=2" in proc.stdout and f"augment_on={where}" in proc.stdout
        assert job.metadata()["training"]["history"][-1]["phase"] == "fine_tune"
        weights[where] = keras.saving.load_model(job.model / "model.keras", compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(weights["cpu"], weights["device"]))
